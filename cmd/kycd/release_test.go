package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd/internal/testenv"
)

// repoRoot is the repository's top directory, from this package's.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// git runs git in the repository and returns its output, trimmed.
func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// scripts/release builds every platform's static binary, each archived
// with the LICENSE, README and CHANGELOG, and a checksums file that
// matches them; the binary says the version, commit and date it was
// stamped with.
func TestReleaseBuild(t *testing.T) {
	testenv.Long(t)
	t.Parallel()
	dist := t.TempDir()
	// Read before the build, which stamps the commit it starts from.
	commit := git(t, "rev-parse", "HEAD")
	date := git(t, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")
	cmd := exec.CommandContext(t.Context(), filepath.Join(repoRoot(t), "scripts", "release"))
	// A work tree with changes (a developer's) builds too, marked -dirty.
	cmd.Env = append(os.Environ(), "DIST="+dist, "VERSION=v9.8.7-test", "ALLOW_DIRTY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, out)
	}
	version := strings.TrimSpace(string(readFile(t, filepath.Join(dist, "VERSION"))))
	if version != "v9.8.7-test" && version != "v9.8.7-test-dirty" {
		t.Fatalf("dist/VERSION = %q, want the VERSION given", version)
	}

	// Every file the checksums name has that SHA-256, and every archive
	// is named.
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dist, "kycd_"+version+"_checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	for sc := bufio.NewScanner(f); sc.Scan(); {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("checksums line %q is not sha256sum's format", sc.Text())
		}
		sums[m[2]] = m[1]
	}
	for name, want := range sums {
		if got := sha256Of(t, filepath.Join(dist, name)); got != want {
			t.Errorf("%s has SHA-256 %s, the checksums file says %s", name, got, want)
		}
	}

	for _, p := range []struct{ os, arch string }{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "arm64"}} {
		name := "kycd_" + version + "_" + p.os + "_" + p.arch
		if _, ok := sums[name+".tar.gz"]; !ok {
			t.Errorf("the checksums file does not name %s.tar.gz", name)
		}
		files := tarFiles(t, filepath.Join(dist, name+".tar.gz"))
		for _, want := range []string{"kycd", "LICENSE", "README.md", "CHANGELOG.md"} {
			if !slices.Contains(files, name+"/"+want) {
				t.Errorf("%s.tar.gz holds %v, want %s", name, files, want)
			}
		}
		bin := filepath.Join(dist, name, "kycd")
		if p.os == "linux" {
			checkStaticELF(t, bin, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.arch])
		} else {
			m, err := macho.Open(bin)
			if err != nil {
				t.Fatalf("%s: %v", bin, err)
			}
			if m.Cpu != macho.CpuArm64 {
				t.Errorf("%s is for %v, want arm64", bin, m.Cpu)
			}
			m.Close()
		}
		if p.os != runtime.GOOS || p.arch != runtime.GOARCH {
			continue
		}
		out, err := exec.CommandContext(t.Context(), bin, "version").Output()
		if err != nil {
			t.Fatalf("%s version: %v", bin, err)
		}
		if want := "kycd " + version + " (" + commit[:12] + ", " + date + ", go"; !strings.HasPrefix(string(out), want) {
			t.Errorf("kycd version printed %q, want it to start %q", out, want)
		}
		out, err = exec.CommandContext(t.Context(), bin, "version", "--json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var b build
		if err := json.Unmarshal(out, &b); err != nil || b.Version != version || b.Revision != commit || b.Date != date {
			t.Errorf("kycd version --json = %s (%v), want version %s, revision %s, date %s", out, err, version, commit, date)
		}
		checkRefusesNewerSchema(t, bin, version)
	}
}

// checkRefusesNewerSchema starts the release binary's serve on a database
// a newer kycd migrated (a migration above its own in goose's table): it
// exits 1 at once, naming both schema versions and its own version.
func checkRefusesNewerSchema(t *testing.T, bin, version string) {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	if out, err := exec.CommandContext(t.Context(), bin, "migrate", "--database", db).CombinedOutput(); err != nil {
		t.Fatalf("kycd migrate: %v\n%s", err, out)
	}
	latest := gooseMax(t, db)
	gooseExec(t, db, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, latest+1)
	// A serve that does not refuse would run on: it is killed after 20 s.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--database", db)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("kycd serve on a newer schema: %v, want exit status 1\n%s", err, out)
	}
	want := fmt.Sprintf("has schema version %d, from a newer kycd: this kycd is %s and knows schema versions up to %d", latest+1, version, latest)
	if !strings.Contains(string(out), want) {
		t.Errorf("kycd serve on a newer schema printed:\n%s\nwant %q", out, want)
	}
}

// checkStaticELF fails unless bin is an ELF executable for machine with
// no dynamic loader: it runs on any Linux of that architecture, and FROM
// scratch.
func checkStaticELF(t *testing.T, bin string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s is for %v, want %v", bin, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s asks for a dynamic loader: not static", bin)
		}
	}
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tarFiles lists the regular files of a .tar.gz.
func tarFiles(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var names []string
	for r := tar.NewReader(z); ; {
		h, err := r.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, h.Name)
		}
	}
}

// The README's first way to get kycd, go install, works from a clone with
// cgo off (a static binary), and the binary runs.
func TestGoInstall(t *testing.T) {
	testenv.Long(t)
	t.Parallel()
	gobin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "install", "./cmd/kycd")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/kycd: %v\n%s", err, out)
	}
	bin := filepath.Join(gobin, "kycd")
	checkStaticELF(t, bin, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH])
	out, err := exec.CommandContext(t.Context(), bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "kycd ") {
		t.Errorf("the installed kycd version: %q, %v", out, err)
	}
}

// kycd healthcheck, the image's HEALTHCHECK: 0 while serve answers
// /healthz (and /readyz with --ready), an error naming the URL when
// nothing answers or the answer is not 200.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if out := mustCLI(t, "healthcheck", "--addr", s.Addr); !strings.Contains(out, "ok: http://"+s.Addr+"/healthz answered 200") {
		t.Errorf("kycd healthcheck printed %q", out)
	}
	if out := mustCLI(t, "healthcheck", "--addr", s.Addr, "--ready"); !strings.Contains(out, "/readyz answered 200") {
		t.Errorf("kycd healthcheck --ready printed %q", out)
	}
	// serve on every interface is reached on loopback, as in the image.
	_, port, _ := strings.Cut(s.Addr, ":")
	var j struct {
		URL    string
		Status int
	}
	jsonOf(t, &j, "healthcheck", "--addr", "0.0.0.0:"+port)
	if j.URL != "http://127.0.0.1:"+port+"/healthz" || j.Status != http.StatusOK {
		t.Errorf("kycd healthcheck --addr 0.0.0.0:%s --json = %+v", port, j)
	}
	if msg := wantCLIError(t, "healthcheck", "--url", s.URL+"/api/v1/sessions"); !strings.Contains(msg, "answered 401") {
		t.Errorf("kycd healthcheck of a URL answering 401: %s", msg)
	}
	closed := freeAddr(t)
	if msg := wantCLIError(t, "healthcheck", "--addr", closed); !strings.Contains(msg, "http://"+closed+"/healthz: no answer") {
		t.Errorf("kycd healthcheck of a closed port: %s", msg)
	}
}

// The image recipes end in the same final stage (user, environment,
// volume, health check, entry point), and every KYCD_ variable the deploy
// files set is one kycd reads.
func TestDeployFiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	final := func(path string) string {
		s := string(readFile(t, filepath.Join(root, path)))
		_, after, ok := strings.Cut(s, "# --- the final stage")
		if !ok {
			t.Fatalf("%s has no final-stage marker", path)
		}
		_, after, _ = strings.Cut(after, "\n")
		return after
	}
	if a, b := final("Dockerfile"), final("deploy/Dockerfile.release"); a != b {
		t.Errorf("the final stages of Dockerfile and deploy/Dockerfile.release differ:\n%s\n----\n%s", a, b)
	}
	known := map[string]bool{}
	for _, vars := range []map[string]string{envTwins, secretFileVars} {
		for _, name := range vars {
			known[name] = true
		}
	}
	variable := regexp.MustCompile(`\bKYCD_[A-Z0-9_]+`)
	for _, path := range []string{"Dockerfile", "deploy/Dockerfile.release", "deploy/kycd.env", "deploy/kycd.service", "docker-compose.yml"} {
		for _, name := range variable.FindAllString(string(readFile(t, filepath.Join(root, path))), -1) {
			if !known[name] {
				t.Errorf("%s sets %s, which kycd does not read", path, name)
			}
		}
	}
}

// With --tls-cert, as serve has it, kycd healthcheck asks over HTTPS: the
// image's HEALTHCHECK keeps working when KYCD_TLS_CERT is set.
func TestHealthcheckHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert := newSelfSigned(t, "kycd healthcheck")
	cert.write(t, certFile, keyFile)
	roots := x509.NewCertPool()
	roots.AddCert(cert.cert)
	s := serveTrusting(t, roots, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--tls-cert", certFile, "--tls-key", keyFile)
	if out := mustCLI(t, "healthcheck", "--addr", s.Addr, "--tls-cert", certFile, "--tls-key", keyFile); !strings.Contains(out, "ok: https://"+s.Addr+"/healthz answered 200") {
		t.Errorf("kycd healthcheck --tls-cert printed %q", out)
	}
	if msg := wantCLIError(t, "healthcheck", "--addr", s.Addr); !strings.Contains(msg, "answered 400") && !strings.Contains(msg, "no answer") {
		t.Errorf("kycd healthcheck over plain HTTP on the HTTPS port: %s, want it to fail", msg)
	}
}
