package main

// Issue 15, item 2, in the fault suite: kycd started with the wrong Ralio
// secret loses nothing that its signature hold can keep.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kycd/kycd"
)

// wrongSecretScenario: 20 events signed with the secret Ralio uses reach a
// kycd given another one; each is answered 401 and held; replays are
// refused until serve is restarted with both secrets; then every replay is
// 200 and every event found applied.
func wrongSecretScenario(t *testing.T, bin string, rows *scenarioRows) {
	const n = 20
	addr := freeAddr(t)
	url := "http://" + addr
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	p := startProcess(t, bin, addr, "--database", db, "--ralio-secret", testSecret, "--admin-token", testToken)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	do := func(req *http.Request) int {
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	api := func(method, path string) int {
		return do(newRequest(method, url+path, nil, http.Header{"Authorization": {"Bearer " + testToken}}))
	}
	answers := map[string]int{}
	ids := make([]string, n)
	for i := range n {
		var body []byte
		ids[i], body = newFailedEvent(800)
		answers[fmt.Sprint(do(webhookRequest(url, otherSecret, body)))]++
	}
	s := &kycdServer{URL: url, Token: testToken, client: client}
	var held []heldView
	deadline := time.Now().Add(30 * time.Second)
	for held = s.held(t); len(held) < n && time.Now().Before(deadline); held = s.held(t) {
		time.Sleep(20 * time.Millisecond)
	}
	refused := map[string]int{}
	for _, h := range held {
		refused[fmt.Sprint(api(http.MethodPost, "/api/v1/quarantine/"+h.ID+"/replay"))]++
	}
	known := 0
	for _, id := range ids {
		if api(http.MethodGet, "/api/v1/events/"+id) == http.StatusOK {
			known++
		}
	}
	if _, err := p.terminate(t, 30*time.Second); err != nil {
		t.Errorf("kycd exited with %v after SIGTERM", err)
	}
	startProcess(t, bin, addr, "--database", db, "--ralio-secret", testSecret+","+otherSecret, "--admin-token", testToken)
	replayed := map[string]int{}
	acked := 0
	for _, h := range held {
		code := api(http.MethodPost, "/api/v1/quarantine/"+h.ID+"/replay")
		replayed[fmt.Sprint(code)]++
		if code == http.StatusOK {
			acked++
		}
	}
	found, missing := foundEvents(t, url, testToken, ids)
	if answers["401"] != n || len(held) != n || refused["409"] != len(held) || known != 0 || replayed["200"] != n || len(missing) > 0 {
		t.Errorf("deliveries %v, held %d, replays under the first secret %v, known before the replay %d, replays under both %v, missing %v",
			answers, len(held), refused, known, replayed, missing)
	}
	rows.add(t, faultRow{
		Fault: fmt.Sprintf("kycd started with the wrong Ralio secret (serve --ralio-secret A on SQLite): %d events signed with B, the one Ralio uses; "+
			"their replays; then serve restarted with --ralio-secret A,B and the hold replayed", n),
		Expected: "each delivery answered 401 and its body kept in the signature hold (reason `" + kycd.QuarantineSignature + "`); " +
			"none acted on; a replay refused (409, saying why) while only A is configured; after the restart every replay 200 and every event found applied",
		Observed: fmt.Sprintf("deliveries: %s; held: %d; replays under A: %s; events known before: %d; replays under A,B: %s",
			countSummary(answers), len(held), countSummary(refused), known, countSummary(replayed)),
		Acked: acked, Found: found, Counted: true,
	})
}
