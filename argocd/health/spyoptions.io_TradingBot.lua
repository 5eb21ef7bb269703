-- Generated from argocd/health/src/TradingBot.lua by argocd/render_cm.py.
-- Argo CD health of a TradingBot (spyoptions.io/v1alpha1), read from the status the
-- operator writes (operator/spy_operator/reconcile.py; reasons in gate.py, vpn.py,
-- pullsecrets.py). Argo CD runs it sandboxed: no string/math/io libraries, so it only
-- compares and joins whole strings. docs/install.md shows what each state looks like.
--   Healthy      armed, approved, running (an approval about to expire is still Healthy)
--   Suspended    held on purpose: disarmed, no or expired approval, global halt
--   Progressing  the operator has not caught up yet, or the bot is starting/stopping
--   Degraded     held by a failing check (gateway, pull secret, VPN, invalid approval)
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

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

-- Reasons for which the bot is deliberately held at 0 replicas.
local held = {
  NotArmed = "Disarmed (spec.armed is false)",
  ApprovalMissing = "Disarmed: no valid approval",
  ApprovalExpired = "Disarmed: approval expired",
  GlobalHalt = "Global halt is active",
}
-- Reasons that clear by themselves when the gateway or the probe comes up.
local waiting = {
  GatewayNotReady = true,
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

local halted = condition("Halted")
if halted ~= nil and halted.status == "True" then
  hs.status = "Suspended"
  hs.message = "Global halt is active: " .. text(halted.message)
  return hs
end

local reason = text(obj.status.reason)
local ready = condition("Ready")
if obj.status.armed ~= true then
  if held[reason] ~= nil then
    if ready ~= nil and ready.status ~= "True" then
      hs.status = "Progressing"
      hs.message = held[reason] .. "; stopping: " .. text(ready.message)
      return hs
    end
    hs.status = "Suspended"
    hs.message = held[reason] .. ": " .. text(obj.status.message)
    return hs
  end
  if waiting[reason] then
    hs.status = "Progressing"
    hs.message = reason .. ": " .. text(obj.status.message)
    return hs
  end
  hs.status = "Degraded"
  hs.message = "Held by the safety gate (" .. reason .. "): " .. text(obj.status.message)
  return hs
end

local approval = {}
if obj.spec ~= nil and obj.spec.approval ~= nil then
  approval = obj.spec.approval
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Armed and running; approved by " .. text(approval.approvedBy) ..
    " until " .. text(approval.expiresAt)
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = "Armed; starting: " .. text(ready.message)
else
  hs.message = "Armed; starting"
end
return hs
