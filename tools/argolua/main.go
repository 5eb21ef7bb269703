// Command argolua evaluates Argo CD resource health with Argo CD's own Lua code.
//
// It is the harness behind tests/delivery/test_argocd_health.py: the health scripts are
// read from the argocd-cm snippet users paste (argocd/argocd-cm.yaml), keyed exactly as
// Argo CD keys them, and every object is judged by
// lua.ResourceHealthOverrides.GetResourceHealth, the lookup the application
// controller calls, in the same sandbox (no string/math/io, os cut to time/date) unless
// a script sets health.lua.useOpenLibs.
//
// Usage: argolua ARGOCD_CM_YAML < objects.json  (a JSON list of objects)
// Prints a JSON list of {"status": ..., "message": ...}, one per object, or
// {"error": ...} for an object whose script failed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/argoproj/argo-cd/v2/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const healthPrefix = "resource.customizations.health."

type configMap struct {
	Data map[string]string `json:"data"`
}

// overrides turns argocd-cm keys "resource.customizations.health.<group>_<kind>" into
// the "<group>/<kind>" keys ResourceHealthOverrides uses (Argo CD's settings manager
// does the same conversion); "resource.customizations.useOpenLibs.<group>_<kind>"
// sets UseOpenLibs for that kind.
func overrides(cm configMap) lua.ResourceHealthOverrides {
	out := lua.ResourceHealthOverrides{}
	for key, script := range cm.Data {
		if !strings.HasPrefix(key, healthPrefix) {
			continue
		}
		gk := strings.Replace(strings.TrimPrefix(key, healthPrefix), "_", "/", 1)
		override := out[gk]
		override.HealthLua = script
		out[gk] = override
	}
	for key, value := range cm.Data {
		if rest, ok := strings.CutPrefix(key, "resource.customizations.useOpenLibs."); ok {
			gk := strings.Replace(rest, "_", "/", 1)
			override := out[gk]
			override.UseOpenLibs = value == "true"
			out[gk] = override
		}
	}
	return out
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argolua ARGOCD_CM_YAML < objects.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var cm configMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	var objects []map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintf(os.Stderr, "stdin: %v\n", err)
		os.Exit(1)
	}
	table := overrides(cm)
	results := make([]result, 0, len(objects))
	for _, obj := range objects {
		status, err := table.GetResourceHealth(&unstructured.Unstructured{Object: obj})
		switch {
		case err != nil:
			results = append(results, result{Error: err.Error()})
		case status == nil:
			results = append(results, result{Error: "no health script for this kind"})
		default:
			results = append(results, result{Status: string(status.Status), Message: status.Message})
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
