-- Generated from argocd/health/src/IBGateway.lua by argocd/render_cm.py.
-- Argo CD health of an IBGateway (spyoptions.io/v1alpha1), read from the status the
-- operator writes (reconcile_ibgateway in operator/spy_operator/reconcile.py). Runs in
-- Argo CD's sandbox (no string/math/io libraries).
--   Healthy      Ready: credentials, pull secrets, VPN and the StatefulSet are fine
--   Progressing  the operator has not caught up, the pod is starting or the probe pending
--   Degraded     a failing check: credentials Secret, pull secret, VPN unreachable
local hs = {}

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local waiting = {
  GatewayStarting = true,
  VPNProbePending = true,
}

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  if obj.status.endpoint ~= nil then
    hs.message = "Ready at " .. tostring(obj.status.endpoint)
  else
    hs.message = "Ready"
  end
  return hs
end
if waiting[ready.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message)
return hs
