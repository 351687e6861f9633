package kycd_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricName finds the names kycd gives its metrics: prometheus.*Opts{Name:
// "kycd_…"} and prometheus.NewDesc("kycd_…", …).
var metricName = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(kycd_[a-z0-9_]+)"`)

// exportedMetrics lists every metric name in kycd's non-test Go files.
func exportedMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir // tools, caches, fixtures: no code of kycd's
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricName.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("found %d metric names: has the way metrics are declared changed? %v", len(names), names)
	}
	return names
}

// Every metric kycd exports is described where operators look: the
// OpenAPI document's /metrics and docs/monitoring.md.
func TestEveryMetricDocumented(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct{ Description string }
	}
	b, err := os.ReadFile("internal/server/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	described := doc.Paths["/metrics"]["get"].Description
	readme, err := os.ReadFile("docs/monitoring.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range exportedMetrics(t) {
		if !strings.Contains(described, "`"+name) {
			t.Errorf("internal/server/openapi.json: GET /metrics does not describe %s", name)
		}
		if !strings.Contains(string(readme), "`"+name) {
			t.Errorf("docs/monitoring.md does not describe %s", name)
		}
	}
}

// The alerting rules name only metrics kycd exports (or Prometheus' own
// up), so a renamed metric cannot leave an alert that never fires.
func TestAlertsUseExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	used := regexp.MustCompile(`\bkycd_[a-z0-9_]*[a-z0-9]\b`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("docs/alerts.yml names no kycd metric")
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if s, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(exported, s) {
				base = s
			}
		}
		if !slices.Contains(exported, base) {
			t.Errorf("docs/alerts.yml uses %s, which kycd does not export", name)
		}
	}
}
