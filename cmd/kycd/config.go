package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/server"
)

// config is kycd's whole configuration: flags, each with an environment
// twin, defaults filled and checked in one place.
type config struct {
	Addr             string
	Database         string
	RalioSecrets     []string
	AdminToken       string
	Sinks            []string // as given; parsed into sinks by validate
	SinkSecrets      []string
	Retention        time.Duration
	AuditRetention   time.Duration
	MaxBody          int64
	BodyBudget       int64
	PeerBodyBudget   int64
	MaxConnections   int
	UntrustedIdle    time.Duration
	LogFormat        string
	LogLevel         string
	ConfigFile       string // --config: a YAML file of serve's settings
	SecretsFile      string // --generated-secrets-file
	RetryBase        time.Duration
	RetryCap         time.Duration
	RetryMaxAttempts int
	RetryMaxAge      time.Duration
	GuidanceFile     string
	Drain            time.Duration
	MaxBacklog       int
	HoldRetention    time.Duration // --signature-hold-retention
	HoldMaxCount     int           // --signature-hold-max-count
	HoldMaxBytes     int64         // --signature-hold-max-bytes
	RalioAPIURL      string
	RalioAPIKey      string
	ReconcileEvery   time.Duration
	ReconcileRate    float64
	ReconcileTimeout time.Duration
	ReconcileRequest time.Duration // --reconcile-request-timeout
	ReviewAlertAfter time.Duration
	MaxClockSkew     time.Duration
	Users            []string // kycd reconcile --user
	JSON             bool
	TLSCert          string   // --tls-cert: PEM certificate chain
	TLSKey           string   // --tls-key: its PEM private key
	TrustedProxies   []string // --trusted-proxies, as given

	sinks          []sinkConfig   // Sinks, parsed and checked
	trustedProxies []netip.Prefix // TrustedProxies, parsed
}

// envTwins maps each flag to its environment variable.
var envTwins = map[string]string{ //nolint:gosec // G101: names of environment variables, not their values
	"addr":                     "KYCD_ADDR",
	"database":                 "KYCD_DATABASE",
	"ralio-secret":             "KYCD_RALIO_SECRETS",
	"admin-token":              "KYCD_ADMIN_TOKEN",
	"sink":                     "KYCD_SINKS",
	"sink-secret":              "KYCD_SINK_SECRET",
	"retention":                "KYCD_RETENTION",
	"audit-retention":          "KYCD_AUDIT_RETENTION",
	"max-body":                 "KYCD_MAX_BODY",
	"body-budget":              "KYCD_BODY_BUDGET",
	"peer-body-budget":         "KYCD_PEER_BODY_BUDGET",
	"max-connections":          "KYCD_MAX_CONNECTIONS",
	"untrusted-idle-timeout":   "KYCD_UNTRUSTED_IDLE_TIMEOUT",
	"log-format":               "KYCD_LOG_FORMAT",
	"log-level":                "KYCD_LOG_LEVEL",
	"config":                   "KYCD_CONFIG",
	"generated-secrets-file":   "KYCD_GENERATED_SECRETS_FILE",
	"retry-base":               "KYCD_RETRY_BASE",
	"retry-cap":                "KYCD_RETRY_CAP",
	"retry-max-attempts":       "KYCD_RETRY_MAX_ATTEMPTS",
	"retry-max-age":            "KYCD_RETRY_MAX_AGE",
	"guidance":                 "KYCD_GUIDANCE",
	"shutdown-drain":           "KYCD_SHUTDOWN_DRAIN",
	"max-backlog":              "KYCD_MAX_BACKLOG",
	"signature-hold-retention": "KYCD_SIGNATURE_HOLD_RETENTION",
	"signature-hold-max-count": "KYCD_SIGNATURE_HOLD_MAX_COUNT",
	"signature-hold-max-bytes": "KYCD_SIGNATURE_HOLD_MAX_BYTES",
	"ralio-api-url":            "KYCD_RALIO_API_URL",
	"ralio-api-key":            "KYCD_RALIO_API_KEY",
	"reconcile-every":          "KYCD_RECONCILE_EVERY",
	"reconcile-rate":           "KYCD_RECONCILE_RATE",
	"review-alert-after":       "KYCD_REVIEW_ALERT_AFTER",
	"max-clock-skew":           "KYCD_MAX_CLOCK_SKEW",
	"tls-cert":                 "KYCD_TLS_CERT",
	"tls-key":                  "KYCD_TLS_KEY",
	"trusted-proxies":          "KYCD_TRUSTED_PROXIES",

	// Reconciliation's deadlines.
	"reconcile-timeout":         "KYCD_RECONCILE_TIMEOUT",
	"reconcile-request-timeout": "KYCD_RECONCILE_REQUEST_TIMEOUT",
}

func (c *config) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.Database, "database", "sqlite:kycd.db", "sqlite:PATH or postgres://…")
	fs.StringSliceVar(&c.RalioSecrets, "ralio-secret", nil, "Ralio webhook secret; repeat or comma-separate to rotate (generated and kept in the database when unset)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "the API's admin token, named admin (generated and kept as a hash when unset; more tokens: kycd tokens create)")
	fs.StringArrayVar(&c.Sinks, "sink", nil, "notification sink, repeatable (default log): name=NAME,type=http|nats|log,url=URL[,events=PATTERN][,order=session|none][,secret=whsec_…], or http=URL, nats=URL?subject=PREFIX, log")
	fs.StringSliceVar(&c.SinkSecrets, "sink-secret", nil, "Standard Webhooks secret (whsec_…) that signs the deliveries of http sinks without their own; repeat or comma-separate to rotate (each signs)")
	fs.DurationVar(&c.Retention, "retention", 90*24*time.Hour, "how long raw event bodies, quarantined bodies and invitation contact data are kept")
	fs.DurationVar(&c.AuditRetention, "audit-retention", kycd.DefaultAuditRetention, "how long audit entries are kept (default 2 years)")
	fs.Int64Var(&c.MaxBody, "max-body", 1<<20, "largest webhook body accepted, in bytes")
	fs.Int64Var(&c.BodyBudget, "body-budget", 32<<20, "bytes of webhook bodies held in memory at once; a delivery beyond it gets 503 (Ralio retries)")
	fs.Int64Var(&c.PeerBodyBudget, "peer-body-budget", 0, "bytes of webhook bodies the requests of one peer address (IPv4, IPv6 /64) hold at once; beyond it 503 (0: a quarter of --body-budget; behind a proxy give --trusted-proxies, so the peer is the client it names)")
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "most HTTP connections open at once; at the cap the one idle the longest is closed for a new one (0: three quarters of the open-file limit, at most 16384)")
	fs.DurationVar(&c.UntrustedIdle, "untrusted-idle-timeout", server.DefaultUntrustedIdleTimeout, "how long a connection that never sent a valid signature or API token may stay idle (Ralio's and API clients' keep 120s)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json (then every line on stderr is JSON)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "least severe log lines written: debug, info, warn or error")
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file of serve's settings, each under its flag's name (sinks: a list of maps); a flag or an environment variable overrides it")
	fs.StringVar(&c.SecretsFile, "generated-secrets-file", "", "where serve writes the secrets it generates when stderr is not a terminal, readable only by its owner (default: kycd-generated-secrets beside the SQLite database, or in $STATE_DIRECTORY or the working directory)")
	fs.DurationVar(&c.RetryBase, "retry-base", time.Second, "first retry delay of a notification delivery")
	fs.DurationVar(&c.RetryCap, "retry-cap", time.Hour, "longest retry delay of a notification delivery")
	fs.IntVar(&c.RetryMaxAttempts, "retry-max-attempts", 15, "attempts before a delivery is dead")
	fs.DurationVar(&c.RetryMaxAge, "retry-max-age", 24*time.Hour, "age after which a failing delivery is dead")
	fs.StringVar(&c.GuidanceFile, "guidance", "", "JSON file of reason code → guidance sentence, over the built-in ones")
	fs.DurationVar(&c.Drain, "shutdown-drain", time.Second, "on shutdown, how long to answer requests on open connections 503 (so Ralio retries) with Connection: close before closing idle ones; new connections are refused from the start")
	fs.DurationVar(&c.HoldRetention, "signature-hold-retention", 72*time.Hour, "how long bodies refused for their signature are kept in the signature hold (for a replay after a wrong secret)")
	fs.IntVar(&c.HoldMaxCount, "signature-hold-max-count", 10000, "most bodies in the signature hold; beyond it the oldest go first")
	fs.Int64Var(&c.HoldMaxBytes, "signature-hold-max-bytes", 64<<20, "most body bytes in the signature hold; beyond it the oldest go first")
	fs.IntVar(&c.MaxBacklog, "max-backlog", 20000, "events acknowledged but not yet projected beyond which webhooks get 503 (Ralio retries), bounding projection lag")
	fs.StringVar(&c.RalioAPIURL, "ralio-api-url", "", "base URL of Ralio's REST API, for reconciliation (e.g. https://api.ralio.example)")
	fs.StringVar(&c.RalioAPIKey, "ralio-api-key", "", "API key of Ralio's REST API, for reconciliation")
	fs.DurationVar(&c.ReconcileEvery, "reconcile-every", 0, "serve: reconcile with Ralio's REST API this often (e.g. 1h); 0 never")
	fs.Float64Var(&c.ReconcileRate, "reconcile-rate", 5, "most requests per second reconciliation sends to Ralio's REST API")
	fs.DurationVar(&c.ReconcileTimeout, "reconcile-timeout", 30*time.Minute, "deadline of a reconciliation run, its waits for Retry-After included; a run still going then stops and the next resumes")
	fs.DurationVar(&c.ReconcileRequest, "reconcile-request-timeout", 30*time.Second, "deadline of one request to Ralio's REST API, its answer read whole (retried like a 5xx)")
	fs.DurationVar(&c.ReviewAlertAfter, "review-alert-after", kycd.DefaultReviewAlertAfter, "serve: how long a session may stay in REVIEW before it is stalled (listed, counted, notified once as kyc.session.stalled)")
	fs.DurationVar(&c.MaxClockSkew, "max-clock-skew", kycd.DefaultMaxClockSkew, "how far after its receipt an event may be stamped and still be ordered at its timestamp; one stamped later is ordered at its receipt plus this, flagged, logged and counted")
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of text")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, with --tls-key; both are read again on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the PEM private key file of --tls-cert")
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", nil, "reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For / Forwarded header names the client, for the audit trail, the logs and --peer-body-budget; any other peer's is ignored")
}

// applyEnv fills every flag not given on the command line from its
// environment twin, so that a bad value names both.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	return applyEnvTwins(fs, envTwins, getenv)
}

// applyEnvTwins is applyEnv with another map of twins, for a command whose
// flags share names with the root's but not their variables.
func applyEnvTwins(fs *pflag.FlagSet, twins map[string]string, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env, ok := twins[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		v := getenv(env)
		if v == "" {
			return
		}
		if f.Name == "sink" {
			// A sink of the named form has commas of its own.
			var specs []string
			if specs, err = splitSinksEnv(v); err == nil {
				err = f.Value.(pflag.SliceValue).Replace(specs)
			}
		} else if sv, ok := f.Value.(pflag.SliceValue); ok {
			parts := strings.Split(v, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			err = sv.Replace(parts)
		} else {
			err = f.Value.Set(v)
		}
		if err != nil {
			shown := v
			if f.Name == "sink" || f.Name == "sink-secret" {
				shown = "…" // it may hold credentials
			}
			err = fmt.Errorf("invalid %s=%q: %w (it sets --%s: %s)", env, shown, err, f.Name, f.Usage)
		}
	})
	return err
}

// validate checks values that flag parsing cannot, naming the flag and the fix.
func (c *config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080", c.Addr)
	}
	if _, _, err := parseDatabase(c.Database); err != nil {
		return err
	}
	for _, s := range c.RalioSecrets {
		if s == "" {
			return fmt.Errorf("--ralio-secret: empty secret in the list; remove the stray comma")
		}
	}
	var err error
	if c.sinks, err = parseSinks(c.Sinks); err != nil {
		return err
	}
	for i, k := range c.SinkSecrets {
		if err := checkSinkSecret(k); err != nil {
			return fmt.Errorf("--sink-secret: secret %d of %d: %w", i+1, len(c.SinkSecrets), err)
		}
	}
	if c.Retention <= 0 {
		return fmt.Errorf("--retention %s: must be positive, e.g. 2160h for 90 days", c.Retention)
	}
	if c.AuditRetention <= 0 {
		return fmt.Errorf("--audit-retention %s: must be positive, e.g. 17520h for 2 years", c.AuditRetention)
	}
	if c.MaxBody < 1024 {
		return fmt.Errorf("--max-body %d: must be at least 1024 bytes", c.MaxBody)
	}
	if c.BodyBudget <= c.MaxBody {
		return fmt.Errorf("--body-budget %d: must be more than --max-body (%d), or no body of the largest size could ever be read; e.g. 33554432 (32 MiB)", c.BodyBudget, c.MaxBody)
	}
	if c.PeerBodyBudget != 0 && (c.PeerBodyBudget <= c.MaxBody || c.PeerBodyBudget > c.BodyBudget) {
		return fmt.Errorf("--peer-body-budget %d: want 0 (a quarter of --body-budget) or more than --max-body (%d) and at most --body-budget (%d)", c.PeerBodyBudget, c.MaxBody, c.BodyBudget)
	}
	if c.MaxConnections < 0 || (c.MaxConnections > 0 && c.MaxConnections < 16) {
		return fmt.Errorf("--max-connections %d: want 0 (from the open-file limit) or at least 16", c.MaxConnections)
	}
	if c.UntrustedIdle < 0 {
		return fmt.Errorf("--untrusted-idle-timeout %s: want 0 (the server's 120s) or positive, e.g. 5s", c.UntrustedIdle)
	}
	if err := c.checkLogging(); err != nil {
		return err
	}
	if c.RetryBase <= 0 || c.RetryCap < c.RetryBase {
		return fmt.Errorf("--retry-base %s / --retry-cap %s: base must be positive and no more than cap", c.RetryBase, c.RetryCap)
	}
	if c.RetryMaxAttempts < 1 {
		return fmt.Errorf("--retry-max-attempts %d: must be at least 1", c.RetryMaxAttempts)
	}
	if c.Drain < 0 || c.Drain > time.Minute {
		return fmt.Errorf("--shutdown-drain %s: want between 0s and 1m", c.Drain)
	}
	if c.HoldRetention <= 0 {
		return fmt.Errorf("--signature-hold-retention %s: must be positive, e.g. 72h", c.HoldRetention)
	}
	if c.HoldMaxCount < 1 {
		return fmt.Errorf("--signature-hold-max-count %d: must be at least 1, e.g. 10000", c.HoldMaxCount)
	}
	if c.HoldMaxBytes < c.MaxBody {
		return fmt.Errorf("--signature-hold-max-bytes %d: must be at least --max-body (%d), e.g. 67108864", c.HoldMaxBytes, c.MaxBody)
	}
	if c.MaxBacklog < 1 {
		return fmt.Errorf("--max-backlog %d: must be at least 1, e.g. 20000", c.MaxBacklog)
	}
	if c.RalioAPIURL != "" {
		if u, err := url.Parse(c.RalioAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--ralio-api-url %q: want an http(s) URL, e.g. https://api.ralio.example", c.RalioAPIURL)
		}
	}
	if c.ReconcileEvery < 0 || (c.ReconcileEvery > 0 && c.ReconcileEvery < time.Minute) {
		return fmt.Errorf("--reconcile-every %s: want 0 (never) or at least 1m, e.g. 1h", c.ReconcileEvery)
	}
	if c.ReconcileRate <= 0 {
		return fmt.Errorf("--reconcile-rate %g: must be positive, e.g. 5 (requests per second)", c.ReconcileRate)
	}
	if c.ReconcileTimeout < time.Second {
		return fmt.Errorf("--reconcile-timeout %s: want at least 1s, e.g. 30m", c.ReconcileTimeout)
	}
	if c.ReconcileRequest < 100*time.Millisecond {
		return fmt.Errorf("--reconcile-request-timeout %s: want at least 100ms, e.g. 30s", c.ReconcileRequest)
	}
	if c.ReviewAlertAfter < time.Minute {
		return fmt.Errorf("--review-alert-after %s: want at least 1m, e.g. 48h", c.ReviewAlertAfter)
	}
	if c.MaxClockSkew < time.Second || c.MaxClockSkew > 24*time.Hour {
		return fmt.Errorf("--max-clock-skew %s: want between 1s and 24h, e.g. 5m", c.MaxClockSkew)
	}
	if c.RetryMaxAge <= 0 {
		return fmt.Errorf("--retry-max-age %s: must be positive", c.RetryMaxAge)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		given, missing := "--tls-cert", "--tls-key (KYCD_TLS_KEY)"
		if c.TLSCert == "" {
			given, missing = "--tls-key", "--tls-cert (KYCD_TLS_CERT)"
		}
		return fmt.Errorf("%s is set but %s is not: HTTPS needs both, the certificate and its private key (PEM files), or neither for plain HTTP", given, missing)
	}
	if c.trustedProxies, err = server.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	return nil
}

// checkServe checks what serve needs of the configuration beyond what
// validate checks for every command: an admin token and secrets that
// cannot be guessed on an address other machines reach, and Ralio's REST
// API when reconciliation is asked for.
func (c *config) checkServe() error {
	if !isLoopback(c.Addr) && c.AdminToken == "" {
		return fmt.Errorf("--addr %s is reachable from other machines, so the API needs an admin token you chose: set --admin-token or KYCD_ADMIN_TOKEN (e.g. KYCD_ADMIN_TOKEN=$(openssl rand -hex 32))", c.Addr)
	}
	if weak := c.weakSecrets(); len(weak) > 0 && !isLoopback(c.Addr) {
		return fmt.Errorf("--addr %s is reachable from other machines, so its secrets must not be guessable: %s", c.Addr, strings.Join(weak, "; "))
	}
	if c.ReconcileEvery > 0 {
		if err := c.requireRalioAPI("--reconcile-every"); err != nil {
			return err
		}
	}
	if c.TLSCert != "" {
		// Read here too so that kycd config check finds a bad pair; serve
		// reads it again to serve it.
		if _, err := loadCertificate(c.TLSCert, c.TLSKey); err != nil {
			return err
		}
	}
	return nil
}

// The shortest secrets serve accepts on an address other machines reach. A
// generated secret (randomToken) is 43 characters; openssl rand -hex 16
// gives 32. (Sink secrets need no rule here: a Standard Webhooks key is
// at least 24 bytes everywhere, checkSinkSecret, 32 characters of base64
// after whsec_.)
const (
	minAdminToken  = 32
	minRalioSecret = 32
)

// weakSecrets names the secrets serve is given that are too short to
// guess-proof an address other machines reach: the admin token and each
// Ralio webhook secret, each named with its flag and the fix. On a
// loopback address only this machine can try them, so serve warns instead.
func (c *config) weakSecrets() []string {
	var weak []string
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		weak = append(weak, fmt.Sprintf("--admin-token / KYCD_ADMIN_TOKEN is %d characters, want at least %d (e.g. KYCD_ADMIN_TOKEN=$(openssl rand -hex 32))", len(c.AdminToken), minAdminToken))
	}
	for i, s := range c.RalioSecrets {
		if len(s) < minRalioSecret {
			weak = append(weak, fmt.Sprintf("--ralio-secret / KYCD_RALIO_SECRETS: secret %d of %d is %d characters, want at least %d (use the secret Ralio generated, or leave it unset to have one generated)", i+1, len(c.RalioSecrets), len(s), minRalioSecret))
		}
	}
	return weak
}

// parseDatabase splits --database into its driver and address.
func parseDatabase(v string) (driver, addr string, err error) {
	switch {
	case strings.HasPrefix(v, "sqlite:"):
		if p := strings.TrimPrefix(v, "sqlite:"); p != "" {
			return "sqlite", p, nil
		}
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return "postgres", v, nil
	}
	return "", "", fmt.Errorf("--database %q: want sqlite:PATH (e.g. sqlite:kycd.db) or postgres://USER@HOST/DB", kycd.RedactURL(v))
}

// isLoopback reports whether addr only listens on this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
