# Delivery (images, Helm chart, Argo CD health, monitoring, workflows). Included by the
# top-level Makefile. `make test` needs the tools below; `make images` builds the OCI
# images with buildah (no Docker daemon), cached.
DELIVERY_APT := buildah umoci skopeo debootstrap shellcheck prometheus
DELIVERY_APT_STAMP := .bin/.delivery-apt.version

.PHONY: delivery-apt delivery-tools images chart

# Debian packages: buildah/umoci/skopeo/debootstrap build and run images; shellcheck
# checks workflow scripts; prometheus provides promtool (rules check and unit tests).
$(DELIVERY_APT_STAMP):
	@missing=""; for p in $(DELIVERY_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "[delivery] installing Debian packages:$$missing (apt-get)"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null || \
		{ echo "[delivery] ERROR: apt-get install$$missing failed; install them by hand" >&2; exit 1; }; \
	fi
	@mkdir -p .bin && echo "$(DELIVERY_APT)" > $@

delivery-apt: $(DELIVERY_APT_STAMP) ## install buildah, umoci, skopeo, debootstrap, shellcheck, promtool (apt)

delivery-tools: venv delivery-apt ## build helm, kubeconform, actionlint, the Argo CD Lua harness into .bin/ (cached)
	@bash tools/build-delivery.sh

images: venv delivery-apt ## build the OCI images with buildah (cached) into .local/images/*.oci.tar
	@bash tools/build-images.sh

chart: delivery-tools ## package the Helm chart into .local/charts/
	@mkdir -p .local/charts && .bin/helm package helm/spy-options -d .local/charts

# images: cached by input hash, a few seconds when nothing changed (docs/install.md has
# the cold cost).
TEST_DEPS += delivery-tools images
