-- Argo CD health of an OptionsDetector (spyoptions.io/v1alpha1), read from the status
-- the operator writes (reconcile_optionsdetector in operator/spy_operator/reconcile.py).
-- Runs in Argo CD's sandbox (no string/math/io libraries).
--   Healthy      every shard Ready and the gateway Ready
--   Progressing  the operator has not caught up, shards starting, gateway starting,
--                VPN probe pending
--   Degraded     a failing check: gateway missing, pull secret, VPN unreachable
--@include common/prelude.lua

local waiting = {
  ShardsStarting = true,
  GatewayNotReady = true,
  VPNProbePending = true,
}

--@include common/generation.lua
--@include common/ready_missing.lua
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = tostring(obj.status.readyShards or 0) .. " shard(s) ready"
  return hs
end
--@include common/ready_reason.lua
