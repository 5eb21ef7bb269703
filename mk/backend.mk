# Backend (spy_backend): Azurite, the Azure Table Storage emulator its tests and the demo
# start. Installed from tools/azurite/package-lock.json (pinned 3.35.0: the newest
# release whose engines accept Node 20). Included by the top-level Makefile.
AZURITE_DIR   := tools/azurite
AZURITE_STAMP := $(AZURITE_DIR)/node_modules/.installed

$(AZURITE_STAMP): $(AZURITE_DIR)/package.json $(AZURITE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "[backend] npm not found: install Node.js 20 (apt-get install nodejs npm)"; exit 1; }
	@echo "[backend] installing Azurite from $(AZURITE_DIR)/package-lock.json (npm ci)"
	@cd $(AZURITE_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@
	@echo "[backend] Azurite ready: $(AZURITE_DIR)/node_modules/.bin/azurite-table"

.PHONY: azurite
azurite: $(AZURITE_STAMP) ## install the pinned Azurite used by backend tests and the demo

TEST_DEPS += azurite
DEMO_DEPS += azurite
