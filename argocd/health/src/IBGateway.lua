-- Argo CD health of an IBGateway (spyoptions.io/v1alpha1), read from the status the
-- operator writes (reconcile_ibgateway in operator/spy_operator/reconcile.py). Runs in
-- Argo CD's sandbox (no string/math/io libraries).
--   Healthy      Ready: credentials, pull secrets, VPN and the StatefulSet are fine
--   Progressing  the operator has not caught up, the pod is starting or the probe pending
--   Degraded     a failing check: credentials Secret, pull secret, VPN unreachable
--@include common/prelude.lua

local waiting = {
  GatewayStarting = true,
  VPNProbePending = true,
}

--@include common/generation.lua
--@include common/ready_missing.lua
if ready.status == "True" then
  hs.status = "Healthy"
  if obj.status.endpoint ~= nil then
    hs.message = "Ready at " .. tostring(obj.status.endpoint)
  else
    hs.message = "Ready"
  end
  return hs
end
--@include common/ready_reason.lua
