package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/sink/httpsink"
	"github.com/kycd/kycd/internal/sink/logsink"
	"github.com/kycd/kycd/internal/sink/natssink"
)

const settingSinkSecret = "sink_secret"

// Sink types.
const (
	sinkHTTP = "http"
	sinkNATS = "nats"
	sinkLog  = "log"
)

// sinkConfig is one --sink: the name its deliveries belong to, where it
// sends, the notification types it takes and, for http, its own secrets.
type sinkConfig struct {
	Name    string
	Type    string
	URL     string   // http and nats
	Events  []string // type patterns; none: every type
	Order   string   // kycd.OrderSession (when "") or kycd.OrderNone
	Secrets []string // http: whsec_ keys, each signing; none: --sink-secret's
}

// eventPattern is what an events= pattern may contain.
var eventPattern = regexp.MustCompile(`^[a-z0-9.*_-]+$`)

// sinkKeys are the keys of the named form, in the order help lists them.
var sinkKeys = []string{"name", "type", "url", "events", "order", "secret"}

const sinkForms = "want name=NAME,type=http|nats|log[,url=URL][,events=PATTERN][,order=session|none][,secret=whsec_…], or a shorthand: http=URL, nats=nats://HOST:PORT?subject=PREFIX, log"

// parseSink reads one --sink value: the named form, in the style of
// docker's --mount (comma-separated key=value fields, CSV-quoted when a
// value holds a comma; events and secret repeat, or separate values with
// ;), or a shorthand named after its type. Errors name the sink, never a
// secret.
func parseSink(spec string) (sinkConfig, error) {
	switch {
	case spec == sinkLog:
		return sinkConfig{Name: sinkLog, Type: sinkLog}, nil
	case strings.HasPrefix(spec, "http="), strings.HasPrefix(spec, "nats="):
		typ, target, _ := strings.Cut(spec, "=")
		s := sinkConfig{Name: typ, Type: typ, URL: target}
		return s, s.check()
	}
	fields, err := csv.NewReader(strings.NewReader(spec)).Read()
	if err != nil || len(fields) == 0 {
		return sinkConfig{}, fmt.Errorf("--sink: cannot read the fields of a sink (%v); %s", redactCSVError(err), sinkForms)
	}
	var s sinkConfig
	seen := map[string]bool{}
	for i, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		switch {
		case !ok:
			// Not shown: it may be part of a secret that held a comma.
			return sinkConfig{}, fmt.Errorf("--sink: field %d has no '=' (quote a value that holds a comma, e.g. \"url=https://…?a=1,2\"); %s", i+1, sinkForms)
		case !slices.Contains(sinkKeys, k):
			return sinkConfig{}, fmt.Errorf("--sink: unknown key %q (keys: %s); %s", k, strings.Join(sinkKeys, ", "), sinkForms)
		case seen[k] && k != "events" && k != "secret":
			return sinkConfig{}, fmt.Errorf("--sink: %s= given twice", k)
		}
		seen[k] = true
		switch k {
		case "name":
			s.Name = v
		case "type":
			s.Type = v
		case "url":
			s.URL = v
		case "events":
			s.Events = append(s.Events, splitList(v)...)
		case "order":
			s.Order = v
		case "secret":
			s.Secrets = append(s.Secrets, splitList(v)...)
		}
	}
	return s, s.check()
}

// splitList splits a value listing several on ;.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// shownField is a field of a --sink value as an error may show it: its key
// only, since its value may be a secret.
func shownField(f string) string {
	if k, _, ok := strings.Cut(f, "="); ok {
		return k + "=…"
	}
	return "…"
}

// redactCSVError keeps what the CSV reader quotes of a value out of the
// message.
func redactCSVError(err error) string {
	if pe, ok := errors.AsType[*csv.ParseError](err); ok {
		return fmt.Sprintf("column %d: %v", pe.Column, pe.Err)
	}
	return "no fields"
}

// check validates a sink's fields, naming the sink and the fix.
func (s sinkConfig) check() error {
	name := s.Name
	if name == "" {
		return fmt.Errorf("--sink: name= is missing; %s", sinkForms)
	}
	if kycd.CheckSinkName(name) != nil {
		return fmt.Errorf("--sink %q: a name is lower-case letters, digits, '.', '_' and '-', up to 63 characters", name)
	}
	switch s.Type {
	case sinkLog:
		if s.URL != "" {
			return fmt.Errorf("--sink %s: a log sink takes no url", name)
		}
	case sinkHTTP:
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--sink %s: url %s: want http(s)://HOST/PATH", name, kycd.RedactURL(s.URL))
		}
	case sinkNATS:
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" || u.Query().Get("subject") == "" {
			return fmt.Errorf("--sink %s: url %s: want nats://HOST:PORT?subject=PREFIX", name, kycd.RedactURL(s.URL))
		}
	case "":
		return fmt.Errorf("--sink %s: type= is missing: http, nats or log", name)
	default:
		return fmt.Errorf("--sink %s: type %q: want http, nats or log", name, s.Type)
	}
	if s.Order != "" && !slices.Contains(kycd.SinkOrders, s.Order) {
		return fmt.Errorf("--sink %s: order=%s: want order=session (each session's notifications in the order kycd applied them, the default) or order=none (no order, for throughput)",
			name, s.Order)
	}
	for _, p := range s.Events {
		if !eventPattern.MatchString(p) || !slices.ContainsFunc(kycd.NotificationTypes(), func(t string) bool { return kycd.MatchType(p, t) }) {
			return fmt.Errorf("--sink %s: events=%s matches no notification type (%s; * matches any run of characters)",
				name, p, strings.Join(kycd.NotificationTypes(), ", "))
		}
	}
	if len(s.Secrets) > 0 && s.Type != sinkHTTP {
		return fmt.Errorf("--sink %s: only an http sink takes a secret", name)
	}
	for i, k := range s.Secrets {
		if err := checkSinkSecret(k); err != nil {
			return fmt.Errorf("--sink %s: secret %d: %w", name, i+1, err)
		}
	}
	return nil
}

// checkSinkSecret says whether a secret has the Standard Webhooks form.
func checkSinkSecret(k string) error {
	if !strings.HasPrefix(k, "whsec_") {
		return errors.New("want the Standard Webhooks form whsec_<base64>")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(k, "whsec_"))
	if err != nil {
		return errors.New("want the Standard Webhooks form whsec_<base64>; the part after whsec_ is not base64")
	}
	if len(key) < minSinkKey {
		return fmt.Errorf("the key after whsec_ is %d bytes, want at least %d (e.g. whsec_ and the base64 of 32 random bytes)", len(key), minSinkKey)
	}
	if _, err := standardwebhooks.NewWebhook(k); err != nil {
		return errors.New("want the Standard Webhooks form whsec_<base64>; the part after whsec_ is not base64")
	}
	return nil
}

// minSinkKey is the shortest signing key taken, in bytes: the lower bound
// of the Standard Webhooks specification (24 to 64 bytes). An empty key
// (whsec_ alone) would sign with nothing anyone could not forge.
const minSinkKey = 24

// parseSinks reads every --sink; their names must differ.
func parseSinks(specs []string) ([]sinkConfig, error) {
	var out []sinkConfig
	for _, spec := range specs {
		s, err := parseSink(spec)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(o sinkConfig) bool { return o.Name == s.Name }) {
			return nil, fmt.Errorf("--sink: two sinks are named %q; give each its own name with the named form, e.g. --sink name=crm,type=http,url=…", s.Name)
		}
		out = append(out, s)
	}
	return out, nil
}

// splitSinksEnv splits KYCD_SINKS, one comma-separated list of fields, into
// one --sink value per sink: a shorthand is a sink of its own, name= starts
// a sink of the named form and the fields after it belong to it.
func splitSinksEnv(v string) ([]string, error) {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return nil, fmt.Errorf("cannot read its fields (%v)", redactCSVError(err))
	}
	var sinks [][]string
	named := false
	for _, f := range fields {
		f = strings.TrimSpace(f)
		k, _, _ := strings.Cut(f, "=")
		switch {
		case f == "":
		case f == sinkLog || k == sinkHTTP || k == sinkNATS:
			sinks, named = append(sinks, []string{f}), false
		case k == "name":
			sinks, named = append(sinks, []string{f}), true
		case named:
			sinks[len(sinks)-1] = append(sinks[len(sinks)-1], f)
		default:
			return nil, fmt.Errorf("field %q comes before any name=…: begin each sink of the named form with its name", shownField(f))
		}
	}
	out := make([]string, len(sinks))
	for i, fs := range sinks {
		var b strings.Builder
		w := csv.NewWriter(&b)
		if err := w.Write(fs); err != nil {
			return nil, err
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, err
		}
		out[i] = strings.TrimSuffix(b.String(), "\n")
	}
	return out, nil
}

// sinkConfigs returns the configured sinks, log when none is.
func (e *env) sinkConfigs() []sinkConfig {
	if len(e.cfg.sinks) == 0 {
		return []sinkConfig{{Name: sinkLog, Type: sinkLog}}
	}
	return e.cfg.sinks
}

// sinkInfos describes the configured sinks for the store: no secret, the
// URL as RedactURL shows it.
func (e *env) sinkInfos() []kycd.SinkInfo {
	var out []kycd.SinkInfo
	for _, s := range e.sinkConfigs() {
		info := kycd.SinkInfo{Name: s.Name, Type: s.Type, Events: s.Events, Order: s.Order}
		info.Order = info.OrderOrDefault()
		if s.URL != "" {
			info.Target = kycd.RedactURL(s.URL)
		}
		out = append(out, info)
	}
	return out
}

// sinkRoutes are the planner's view of the configured sinks.
func (e *env) sinkRoutes() []kycd.SinkRoute {
	var out []kycd.SinkRoute
	for _, s := range e.sinkConfigs() {
		out = append(out, kycd.SinkRoute{Name: s.Name, Events: s.Events})
	}
	return out
}

// registeredRoutes are the sinks a command that notifies (a replay, a
// reconciliation, a resend) sends to: those the last kycd serve to start
// registered, so the notification goes where serve sends; log when no
// serve ever registered any, as serve would have.
func (e *env) registeredRoutes(ctx context.Context, store kycd.Store) ([]kycd.SinkRoute, error) {
	sinks, err := store.RegisteredSinks(ctx)
	if err != nil {
		return nil, err
	}
	if routes := kycd.ConfiguredRoutes(sinks); len(routes) > 0 {
		return routes, nil
	}
	return e.sinkRoutes(), nil
}

// app is the application layer over store for a command: the sinks
// are those the last kycd serve registered (or the configured ones), the
// actor is cli:USER, and no dispatcher runs here to wake.
func (e *env) app(ctx context.Context, store kycd.Store) (*app.Service, error) {
	routes, err := e.registeredRoutes(ctx, store)
	if err != nil {
		return nil, err
	}
	return &app.Service{Store: store, Sinks: routes}, nil
}

// cliActor is the actor of the audit entries a command writes.
func (e *env) cliActor() app.Actor { return app.Actor{Name: e.actor()} }

// openSinks connects every configured sink, by name. The returned closer
// releases them; a sink that fails to close (a NATS connection that could
// not drain what it still held) is logged, as kycd is stopping by then.
func (e *env) openSinks(ctx context.Context, log *slog.Logger, store kycd.Store) (map[string]kycd.Sink, func(), error) {
	sinks := map[string]kycd.Sink{}
	type closer struct {
		name string
		io.Closer
	}
	var closers []closer
	closeAll := func() {
		for _, c := range closers {
			if err := c.Close(); err != nil {
				log.Warn("closing a sink", "sink", c.name, "err", kycd.RedactText(err.Error()))
			}
		}
	}
	for _, s := range e.sinkConfigs() {
		switch s.Type {
		case sinkLog:
			sinks[s.Name] = logsink.New(e.stdout)
		case sinkHTTP:
			secrets := s.Secrets
			if len(secrets) == 0 {
				var err error
				if secrets, err = e.sinkSecrets(ctx, log, store); err != nil {
					closeAll()
					return nil, nil, err
				}
			}
			h, err := httpsink.New(s.URL, secrets, &http.Client{}, nil)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("--sink %s: %w", s.Name, err)
			}
			sinks[s.Name] = h
		case sinkNATS:
			n, err := natssink.Open(ctx, s.URL, natssink.MaxAge(e.cfg.Retention))
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("--sink %s: %s", s.Name, kycd.RedactText(err.Error()))
			}
			sinks[s.Name] = n
			closers = append(closers, closer{s.Name, n})
		}
	}
	return sinks, closeAll, nil
}

// sinkSecrets are the configured Standard Webhooks secrets of the http
// sinks without their own (several during a rotation), or the one kycd
// generated and kept on first need.
func (e *env) sinkSecrets(ctx context.Context, log *slog.Logger, store kycd.Store) ([]string, error) {
	if len(e.cfg.SinkSecrets) > 0 {
		return e.cfg.SinkSecrets, nil
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret, err := e.generated(ctx, log, store, settingSinkSecret, "a notification signing secret", "--sink-secret / KYCD_SINK_SECRET",
		"whsec_"+base64.StdEncoding.EncodeToString(b), "set --sink-secret / KYCD_SINK_SECRET of your own and give it to the receivers")
	if err != nil {
		return nil, err
	}
	return []string{secret}, nil
}

// guidance is the built-in guidance with the merchant's file over it.
func (e *env) guidance() (kycd.Guidance, error) {
	g := kycd.DefaultGuidance()
	if e.cfg.GuidanceFile == "" {
		return g, nil
	}
	b, err := os.ReadFile(e.cfg.GuidanceFile)
	if err != nil {
		return nil, fmt.Errorf("--guidance: %w", err)
	}
	var over kycd.Guidance
	if err := json.Unmarshal(b, &over); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("--guidance %s: not JSON at byte %d: %w; want an object of reason code to sentence", e.cfg.GuidanceFile, se.Offset, err)
		}
		return nil, fmt.Errorf("--guidance %s: want a JSON object of reason code to sentence, e.g. {\"EXPIRED_DOCUMENT\": \"…\"}: %w", e.cfg.GuidanceFile, err)
	}
	return g.Merge(over), nil
}
