package server_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

// The stats window's default is kycd.DefaultStatsWindow and nothing
// else: the OpenAPI document says it, and the dashboard, which takes it
// from the API's answer, offers it among its windows.
func TestStatsDefaultWindowIsDefinedOnce(t *testing.T) {
	t.Parallel()
	want := kycd.FormatStatsWindow(kycd.DefaultStatsWindow)
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string
				Schema struct{ Default any }
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := ""
	for _, p := range doc.Paths["/api/v1/stats"]["get"].Parameters {
		if p.Name == "window" {
			documented, _ = p.Schema.Default.(string)
		}
	}
	if documented != want {
		t.Errorf("openapi.json: the default window of /api/v1/stats is %q, want %q (kycd.DefaultStatsWindow)", documented, want)
	}
	page, err := os.ReadFile("dashboard/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<option value="`+want+`">`) {
		t.Errorf("the dashboard offers no window %q, the API's default", want)
	}
	js, err := os.ReadFile("dashboard/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), `"`+want+`"`) {
		t.Errorf("the dashboard's script names the default window %q itself; it must take it from the API's answer", want)
	}
}
