package main

// The fault and abuse suite (issue 7): kycd crashed, starved and fed
// garbage, each scenario recording what it tried, what it expected, what
// it saw and how many acknowledged events it found again. The rows are the
// table of docs/reliability.md; a row that lost an acknowledged event fails
// the test.
//
// Regenerate the document (it is committed) with
//
//	KYCD_RELIABILITY_DOC=1 go test -count=1 -run '^TestFaultSuite$' ./cmd/kycd
//
// with KYCD_TEST_POSTGRES set, as root or as a user that may mount a tmpfs
// (for the full disk) and with PostgreSQL's server binaries installed (for
// the PostgreSQL outage). A run of every scenario (KYCD_TEST_LONG=1, as
// .ci/run sets) checks that the committed document has a row for every
// fault the suite tries; a plain `go test` runs only the quick scenarios.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycd/kycd/internal/testenv"
)

// Sections of docs/reliability.md, in order.
const (
	sectionCrashes = "Crashes and outages"
	sectionTraffic = "Hostile and heavy traffic"
	sectionInput   = "Bad input"
	sectionFuzz    = "Fuzzing"
)

var sections = []struct{ name, intro string }{
	{sectionCrashes, "A kycd process (built from this tree, a process of its own) under load from Ralio-like senders: " +
		"each sender posts new signed events and sends the same bytes again after every 503 or connection error, " +
		"as Ralio retries, until kycd answers 200. *Acknowledged* counts the events kycd answered 200; *found* counts " +
		"those that `GET /api/v1/events/{id}` returns, stored and applied, after the fault and the recovery."},
	{sectionTraffic, "Clients that hold connections or send slowly, and many at once, against a kycd process."},
	{sectionInput, "Signed and unsigned requests sent on a raw connection to `POST /webhooks/ralio` of a kycd serving each store " +
		"(SQLite, PostgreSQL). Unless a row says otherwise, a body is signed with the right secret and sent with " +
		"`Content-Type: application/json`; *Ralio's bodies* are the eight examples of `ralio/testdata` (every envelope " +
		"generation and event kind, and an unknown type), each given a fresh event id. Every 400 is checked to have " +
		"left its exact body in the quarantine, every 409 both bodies, and no other answer to have left anything there; " +
		"every 200 is checked to be found by the API, projected (applied, stale or, for a type kycd does not act on, unhandled). A 400 in plain text comes from Go's HTTP server for a request that is not " +
		"valid HTTP, before kycd sees it: there is no request body to keep."},
	{sectionFuzz, "`go test -fuzz` for a fixed time, run by the fault suite's fuzzing scenario (`fuzzScenario` in `cmd/kycd/faults_test.go`, " +
		"the one place that names the targets and the time): when this file is regenerated, and in `.ci/run`'s fuzz step, which runs that scenario " +
		"alone (`KYCD_TEST_FUZZ=1 go test -run '^TestFaultSuite$/^scenarios$/^fuzzing$' ./cmd/kycd`). Every other run of the suite records these rows " +
		"without fuzzing, so each target is fuzzed once per CI run."},
}

// faultRow is one fault or bad input tried and what came of it.
type faultRow struct {
	Fault    string
	Expected string
	Observed string
	// Acked counts the events kycd answered 200, Found those of them
	// found stored after the fault; Counted says whether the row is about
	// events at all.
	Acked, Found int
	Counted      bool

	section string
	order   [2]int // scenario, then row within it
}

func (r faultRow) lost() int { return r.Acked - r.Found }

// faultReport collects the rows of the scenarios, which run in parallel.
type faultReport struct {
	mu      sync.Mutex
	rows    []faultRow
	skipped []string // scenarios that did not run, and why
}

// scenarioRows records the rows of one scenario, in the order it adds them.
type scenarioRows struct {
	report  *faultReport
	section string
	index   int
	n       int
}

// add records r. A row that lost an acknowledged event fails the test:
// that is the one thing kycd must never do.
func (s *scenarioRows) add(t *testing.T, r faultRow) {
	t.Helper()
	r.section, r.order = s.section, [2]int{s.index, s.n}
	s.n++
	if r.Counted && r.lost() != 0 {
		t.Errorf("%s: %d events acknowledged, %d found after recovery: %d LOST", r.Fault, r.Acked, r.Found, r.lost())
	}
	s.report.mu.Lock()
	defer s.report.mu.Unlock()
	s.report.rows = append(s.report.rows, r)
}

func (rep *faultReport) skip(name, why string) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.skipped = append(rep.skipped, name+": "+why)
}

// faultScenario is one part of the suite. Sequential scenarios measure
// timing and run alone; the others run two at a time (go test's -parallel
// is GOMAXPROCS), beside nothing else of this package. Long scenarios (a
// few seconds to most of a minute each) run only with KYCD_TEST_LONG=1,
// as .ci/run sets.
type faultScenario struct {
	name       string
	section    string
	sequential bool
	long       bool
	run        func(t *testing.T, bin string, rows *scenarioRows)
}

func faultScenarios() []faultScenario {
	return []faultScenario{
		{name: "slow bodies", section: sectionTraffic, long: true, sequential: true, run: slowBodiesScenario},
		{name: "1000 connections", section: sectionTraffic, long: true, sequential: true, run: thousandConnectionsScenario},
		{name: "half bodies from one address", section: sectionTraffic, long: true, sequential: true, run: halfBodiesScenario},
		{name: "1024 open files", section: sectionTraffic, long: true, sequential: true, run: fdLimitScenario},
		{name: "hostile reconcile answers", section: sectionTraffic, long: true, run: reconcileHostileScenario},
		{name: "kill -9 on SQLite", section: sectionCrashes, long: true, run: kill9Scenario("SQLite")},
		{name: "kill -9 on PostgreSQL", section: sectionCrashes, long: true, run: kill9Scenario("PostgreSQL")},
		{name: "PostgreSQL outage", section: sectionCrashes, long: true, run: postgresOutageScenario},
		{name: "disk full", section: sectionCrashes, long: true, run: diskFullScenario},
		{name: "disk filled and freed", section: sectionCrashes, long: true, run: diskFreedScenario},
		{name: "projection write lock held", section: sectionCrashes, long: true, run: projectionLockScenario},
		{name: "SIGTERM", section: sectionCrashes, run: sigtermScenario},
		{name: "backup and restore", section: sectionCrashes, run: backupScenario},
		{name: "SQLite files copied at two moments", section: sectionCrashes, run: inconsistentPairScenario},
		{name: "wrong Ralio secret", section: sectionCrashes, run: wrongSecretScenario},
		{name: "bad input", section: sectionInput, run: badInputScenario},
		{name: "a quarantine-only subject", section: sectionInput, run: quarantineOnlyScenario},
		{name: "future-dated event", section: sectionInput, run: clockSkewScenario},
		{name: "hostile text", section: sectionInput, run: hostileTextScenario},
		{name: "operator mistakes", section: sectionInput, run: operatorMistakesScenario},
		// Alone: a fuzz worker starved of CPU for 10 s is reported as hung.
		{name: "fuzzing", section: sectionFuzz, sequential: true, run: fuzzScenario},
	}
}

// regenerating reports whether this run writes docs/reliability.md.
func regenerating() bool { return os.Getenv("KYCD_RELIABILITY_DOC") == "1" }

const reliabilityDoc = "../../docs/reliability.md"

func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("kills, starves and floods kycd processes for about a minute")
	}
	bin := buildKycd(t)
	rep := &faultReport{}
	scenarios := faultScenarios()
	var ran atomic.Int64
	t.Run("scenarios", func(t *testing.T) {
		for i, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				ran.Add(1)
				if !sc.sequential {
					t.Parallel()
				}
				// A skip (a capability this machine lacks, or a long
				// scenario without KYCD_TEST_LONG=1) is reported in the
				// document instead of a row.
				defer func() {
					if t.Skipped() {
						rep.skip(sc.name, "skipped (see the test log)")
					}
				}()
				if sc.long {
					testenv.Long(t)
				}
				sc.run(t, bin, &scenarioRows{report: rep, section: sc.section, index: i})
			})
		}
	})
	doc := rep.markdown()
	if t.Failed() {
		t.Logf("the table so far:\n%s", doc)
		return
	}
	complete := ran.Load() == int64(len(scenarios)) && len(rep.skipped) == 0
	if regenerating() {
		if !complete {
			t.Fatalf("not writing %s: %d of %d scenarios ran; skipped: %s", reliabilityDoc, ran.Load(), len(scenarios), strings.Join(rep.skipped, "; "))
		}
		if err := os.WriteFile(reliabilityDoc, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d rows)", reliabilityDoc, len(rep.rows))
		return
	}
	t.Logf("the suite's table:\n%s", doc)
	if complete {
		rep.checkCommitted(t)
	}
}

// checkCommitted fails when the committed document lacks a row the suite
// tried or keeps one it no longer tries, or shows an event lost.
func (rep *faultReport) checkCommitted(t *testing.T) {
	t.Helper()
	const how = "regenerate it: KYCD_RELIABILITY_DOC=1 go test -count=1 -run '^TestFaultSuite$' ./cmd/kycd"
	b, err := os.ReadFile(reliabilityDoc)
	if err != nil {
		t.Fatalf("%v: %s", err, how)
	}
	committed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		cells := tableCells(sc.Text())
		if len(cells) < 6 || cells[0] == "Fault" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		committed[cells[0]] = true
		if lost := cells[len(cells)-1]; lost != "0" && lost != "–" {
			t.Errorf("%s shows %s events lost for %q", reliabilityDoc, lost, cells[0])
		}
	}
	tried := map[string]bool{}
	for _, r := range rep.rows {
		cell := mdCell(r.Fault)
		tried[cell] = true
		if !committed[cell] {
			t.Errorf("%s has no row for %q: %s", reliabilityDoc, r.Fault, how)
		}
	}
	for c := range committed {
		if !tried[c] {
			t.Errorf("%s has a row for %q, which the suite no longer tries: %s", reliabilityDoc, c, how)
		}
	}
}

// tableCells splits a Markdown table row into its cells ("" is no row).
func tableCells(line string) []string {
	if !strings.HasPrefix(line, "| ") || !strings.HasSuffix(line, " |") {
		return nil
	}
	parts := strings.Split(line[2:len(line)-2], " | ")
	return parts
}

// mdCell makes s one cell of a Markdown table.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func (rep *faultReport) markdown() []byte {
	rows := slices.Clone(rep.rows)
	sectionIndex := func(name string) int {
		return slices.IndexFunc(sections, func(s struct{ name, intro string }) bool { return s.name == name })
	}
	slices.SortStableFunc(rows, func(a, b faultRow) int {
		if d := sectionIndex(a.section) - sectionIndex(b.section); d != 0 {
			return d
		}
		if d := a.order[0] - b.order[0]; d != 0 {
			return d
		}
		return a.order[1] - b.order[1]
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Reliability: faults and bad input\n\n")
	fmt.Fprintf(&b, "Generated by the fault suite (`cmd/kycd/faults_test.go`, `TestFaultSuite`); do not edit by hand. Regenerate with\n\n")
	fmt.Fprintf(&b, "```sh\nKYCD_RELIABILITY_DOC=1 KYCD_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \\\n  go test -count=1 -run '^TestFaultSuite$' ./cmd/kycd\n```\n\n")
	fmt.Fprintf(&b, "as root (the full disk is a tmpfs the suite mounts) on a machine with PostgreSQL's server binaries "+
		"(the outage runs a private cluster, never the shared one). `.ci/run` runs the whole suite (it sets `KYCD_TEST_LONG=1`) "+
		"and fails if any acknowledged event is lost or if this file lacks a row for a fault the suite tries; a plain `go test ./...` "+
		"runs only the quick scenarios (bad input, SIGTERM) and skips the long ones, naming the switch.\n\n")
	fmt.Fprintf(&b, "Last generated %s on %s/%s, %d CPUs, %s.\n\n", time.Now().UTC().Format(time.DateOnly),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	var acked, found, n int
	for _, r := range rows {
		if r.Counted {
			acked += r.Acked
			found += r.Found
		}
		n++
	}
	fmt.Fprintf(&b, "**%d faults and kinds of input tried; %d events acknowledged, %d found after recovery, %d lost.**\n",
		n, acked, found, acked-found)
	for _, s := range sections {
		if !slices.ContainsFunc(rows, func(r faultRow) bool { return r.section == s.name }) {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.name, s.intro)
		fmt.Fprintf(&b, "| Fault | Expected | Observed | Acknowledged | Found | Lost |\n|---|---|---|---|---|---|\n")
		for _, r := range rows {
			if r.section != s.name {
				continue
			}
			ack, fnd, lost := "–", "–", "–"
			if r.Counted {
				ack, fnd, lost = strconv.Itoa(r.Acked), strconv.Itoa(r.Found), strconv.Itoa(r.lost())
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(r.Fault), mdCell(r.Expected), mdCell(r.Observed), ack, fnd, lost)
		}
	}
	return b.Bytes()
}

// moduleRoot is the directory of go.mod, two levels up from this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// fuzzTime is how long each fuzz target runs.
const fuzzTime = "15s"

// fuzzing reports whether this run fuzzes ralio's targets: when the
// document is regenerated, and in .ci/run's fuzz step, which runs the
// fuzzing scenario alone with KYCD_TEST_FUZZ=1. fuzzScenario is the one
// place that names the targets and fuzzes them; every other run (go test
// ./..., .ci/run's test step) records their rows without fuzzing, so no
// target is fuzzed twice.
func fuzzing() bool { return regenerating() || os.Getenv("KYCD_TEST_FUZZ") == "1" }

// fuzzScenario runs ralio's fuzz targets for fuzzTime each when fuzzing();
// otherwise the rows only say what is tried.
func fuzzScenario(t *testing.T, _ string, rows *scenarioRows) {
	targets := []struct{ name, invariant string }{
		{"FuzzParse", "no panic; every refusal a non-empty, deterministic ValidationError; nothing accepted without the envelope and the fields its kind needs (ids UUIDs, level REGULAR or LIGHT, checks with type and state, reasons with a code)"},
		{"FuzzVerify", "no panic; every correct MAC accepted in hex and each base64 spelling; nothing accepted that is not the MAC of the body; a blank header is ErrNoSignature, any other refusal ErrBadSignature"},
	}
	for _, tg := range targets {
		fault := fmt.Sprintf("`ralio.%s`, %s of `go test -fuzz` (seeded with Ralio's examples)", tg.name, fuzzTime)
		if !fuzzing() {
			rows.add(t, faultRow{Fault: fault, Expected: tg.invariant, Observed: "run by .ci/run"})
			continue
		}
		cmd := exec.CommandContext(t.Context(), "go", "test", "-run", "^$", "-fuzz", "^"+tg.name+"$", "-fuzztime", fuzzTime, "./ralio")
		cmd.Dir = moduleRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tg.name, err, out)
		}
		rows.add(t, faultRow{Fault: fault, Expected: tg.invariant, Observed: "no failure: " + fuzzFigures(out)})
	}
}

// fuzzFigures reads the totals of go test -fuzz's last progress line.
func fuzzFigures(out []byte) string {
	var execs, interesting, total string
	for l := range strings.SplitSeq(string(out), "\n") {
		if m := fuzzProgress.FindStringSubmatch(l); m != nil {
			execs, interesting, total = m[1], m[2], m[3]
		}
	}
	if execs == "" {
		return "no progress line in the output"
	}
	return fmt.Sprintf("%s executions in %s, %s new interesting inputs (%s in the corpus)", thousands(execs), fuzzTime, interesting, total)
}

var fuzzProgress = regexp.MustCompile(`execs: (\d+) .*new interesting: (\d+) \(total: (\d+)\)`)

// thousands writes a decimal number with commas between thousands.
func thousands(n string) string {
	for i := len(n) - 3; i > 0; i -= 3 {
		n = n[:i] + "," + n[i:]
	}
	return n
}
