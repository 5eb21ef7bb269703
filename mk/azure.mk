# Azure half (docs/azure.md): OpenTofu, the azurerm provider mirror, tflint and checkov
# (tools/build-azure.sh, cached in .bin/), Debian strongSwan for the VPN tunnel test,
# and `make terraform-check`: the fmt/tflint/checkov/validate tests of tests/azure on
# their own. Included by the top-level Makefile.
TOFU        := .bin/tofu
TFLINT      := .bin/tflint
CHECKOV     := .bin/checkov-venv/bin/checkov
# What tests/azure/test_azure_swanctl.py and test_azure_vpn_tunnel.py need: charon,
# swanctl, the gcm/openssl plugins (a Recommends, so named here) and kernel-libipsec
# (ESP in user space: this machine's kernel has XFRM but no ESP; docs/azure.md).
STRONGSWAN_PKGS := strongswan-swanctl strongswan-charon libstrongswan-standard-plugins \
                   libcharon-extra-plugins

.PHONY: azure-tools strongswan terraform-check

azure-tools: $(UV) ## build tofu, the azurerm provider mirror, tflint and checkov into .bin/ (cached)
	@bash tools/build-azure.sh

# Where systemd runs, the packages start a system charon; the tests run their own
# instances inside network namespaces and never talk to it.
strongswan: ## install Debian strongSwan (charon, swanctl, kernel-libipsec) for the VPN tests
	@if [ -x /usr/sbin/swanctl ] && [ -x /usr/lib/ipsec/charon ] && \
	   [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] && \
	   [ -e /usr/lib/ipsec/plugins/libstrongswan-gcm.so ]; then exit 0; fi; \
	command -v apt-get >/dev/null || { \
		echo "[azure] ERROR: strongSwan is missing and apt-get is not available." >&2; \
		echo "[azure] Install $(STRONGSWAN_PKGS) (Debian/Ubuntu package names) by hand;" >&2; \
		echo "[azure] tests/azure/test_azure_swanctl.py and test_azure_vpn_tunnel.py need them." >&2; \
		exit 1; }; \
	echo "[azure] installing $(STRONGSWAN_PKGS) with apt-get"; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	{ $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $(STRONGSWAN_PKGS); } || { \
		echo "[azure] ERROR: apt-get could not install $(STRONGSWAN_PKGS)." >&2; exit 1; }; \
	echo "[azure] $$(/usr/sbin/swanctl --version 2>/dev/null | head -1) installed"

terraform-check: venv azure-tools ## fmt -check, tflint, checkov and validate on terraform/ (offline)
	@$(PY) -m pytest -q tests/azure/test_terraform_tools.py

TEST_DEPS += azure-tools strongswan
