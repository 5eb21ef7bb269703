# Dashboard browser tests (tests/dashboard) drive Debian's Chromium through Playwright
# with executable_path=/usr/bin/chromium; Playwright's own browser download is never
# used (it cannot work on a closed network). Included by the top-level Makefile.
CHROMIUM ?= /usr/bin/chromium

.PHONY: chromium
chromium: ## install Debian's chromium for the dashboard browser tests (if missing)
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	echo "[dashboard] $(CHROMIUM) missing: installing Debian's chromium (apt-get, ~1-3 min)"; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	if ! { $$SUDO apt-get update -qq && \
	       DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium; }; then \
		echo "[dashboard] ERROR: could not install chromium with apt-get." >&2; \
		echo "[dashboard] Install it by hand ('apt-get install chromium') so $(CHROMIUM) exists," >&2; \
		echo "[dashboard] or point CHROMIUM= at a Chromium binary; tests/dashboard fails without it." >&2; \
		exit 1; \
	fi; \
	[ -x "$(CHROMIUM)" ] || { echo "[dashboard] ERROR: apt-get succeeded but $(CHROMIUM) is still missing" >&2; exit 1; }; \
	echo "[dashboard] $$($(CHROMIUM) --version 2>/dev/null) installed"

TEST_DEPS += chromium
