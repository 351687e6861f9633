package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// A configuration file (--config, KYCD_CONFIG) is YAML: a map of serve's
// settings, each under its flag's name, a list under the plural of a
// repeated flag's (fileKeys). A flag given on the command line or by its
// environment variable overrides the file's value, which overrides the
// default. The file is read with yaml.v3's node API, not decoded into a
// struct, so that an unknown key is refused with its line, and each value
// goes through its flag's own parser (pflag.Value.Set), so that a
// setting means the same in the three places: see docs/decisions.md.

// fileKeys are the keys of the repeated flags, which take a list.
var fileKeys = map[string]string{"sink": "sinks", "ralio-secret": "ralio-secrets", "sink-secret": "sink-secrets"}

// fileKey is flag's key in a configuration file.
func fileKey(flag string) string {
	if k, ok := fileKeys[flag]; ok {
		return k
	}
	return flag
}

// fileFlags are the flags a configuration file may set: serve's, but
// --config itself.
func fileFlags() []string {
	return slices.DeleteFunc(slices.Clone(serveFlags), func(f string) bool { return f == "config" })
}

// configFile is a configuration file as read: the values it gives, by
// flag, in the file's order.
type configFile struct {
	path   string
	values []fileValue
}

// fileValue is the value a file gives a flag, with where.
type fileValue struct {
	flag   string
	key    string
	line   int
	values []string // one for a flag of one value; the list of a repeated flag (for sinks, one --sink value each)
}

// where is the file and line of v, as errors and kycd config check say it.
func (c *configFile) where(v fileValue) string { return fmt.Sprintf("%s:%d", c.path, v.line) }

// readConfigFile reads a configuration file, refusing an unknown key, a
// key given twice, and a value of the wrong shape, each with its line.
func readConfigFile(path string) (*configFile, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the file the operator named
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("--config %s: not YAML: %w", path, err)
	}
	c := &configFile{path: path}
	if len(doc.Content) == 0 {
		return c, nil // empty: every setting from elsewhere
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a map of settings, e.g. addr: 127.0.0.1:8080", path, root.Line)
	}
	keys := map[string]string{} // key → flag
	for _, f := range fileFlags() {
		keys[fileKey(f)] = f
	}
	seen := map[string]int{} // key → line
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		flag, ok := keys[k.Value]
		if !ok {
			return nil, fmt.Errorf("%s:%d: unknown key %q%s; the keys are serve's flags without their dashes (kycd serve --help, docs/configuration.md)",
				path, k.Line, k.Value, suggestKey(k.Value, keys))
		}
		if first, twice := seen[k.Value]; twice {
			return nil, fmt.Errorf("%s:%d: %s given twice (first at line %d): keep one", path, k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		fv := fileValue{flag: flag, key: k.Value, line: k.Line}
		var err error
		switch {
		case flag == "sink":
			fv.values, err = fileSinks(v)
		case fileKeys[flag] != "":
			fv.values, err = fileList(v)
		default:
			var s string
			s, err = fileScalar(v)
			fv.values = []string{s}
		}
		if err != nil {
			line := v.Line
			if at, ok := errors.AsType[*lineError](err); ok {
				line, err = at.line, at.err
			}
			return nil, fmt.Errorf("%s:%d: %s: %w", path, line, k.Value, err)
		}
		c.values = append(c.values, fv)
	}
	return c, nil
}

// resolve is n, or the node an alias names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// suggestKey names the key meant by a near miss: the plural of a list, a
// flag's name with its dashes, or underscores for dashes.
func suggestKey(key string, keys map[string]string) string {
	for _, try := range []string{key + "s", strings.TrimPrefix(key, "--"), strings.ReplaceAll(key, "_", "-"), strings.TrimSuffix(key, "s")} {
		if _, ok := keys[try]; ok && try != key {
			return fmt.Sprintf(" (did you mean %s?)", try)
		}
	}
	return ""
}

// fileScalar is the value of a setting that takes one.
func fileScalar(n *yaml.Node) (string, error) {
	switch {
	case n.Kind != yaml.ScalarNode:
		return "", errors.New("want one value, not a list or a map")
	case n.Tag == "!!null":
		return "", errors.New("has no value: give one, or remove the key for the default")
	}
	return n.Value, nil
}

// fileList is the values of a repeated setting: a list, or one value.
func fileList(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("want a list of values")
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		s, err := fileScalar(resolve(item))
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", len(out)+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// sinkOption is what a key of a sink's map may be: the keys of --sink's
// named form are words and dashes.
var sinkOption = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// fileSinks turns sinks: into one --sink value each. An item is a map of
// the named form's keys (name, type, url, events, secret, and any other
// option --sink takes), a list value standing for several (events,
// secret); or a string, a --sink value as it is (log, http=URL). Each is
// written as the --sink value that says the same and parsed by parseSink
// here, so that a file takes exactly what --sink takes and a mistake is
// reported with the line of its sink.
func fileSinks(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("want a list of sinks, each a map: - {name: crm, type: http, url: https://…}")
	}
	specs := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		spec, err := fileSink(item)
		if err == nil {
			_, err = parseSink(spec)
		}
		if err != nil {
			return nil, &lineError{item.Line, fmt.Errorf("sink %d: %w", i+1, err)}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// lineError is an error at a line of its own, below its key's.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// fileSink is the --sink value of one item of sinks:.
func fileSink(item *yaml.Node) (string, error) {
	if item.Kind == yaml.ScalarNode {
		return item.Value, nil
	}
	if item.Kind != yaml.MappingNode {
		return "", errors.New("want a map, e.g. {name: crm, type: http, url: https://…}")
	}
	var fields []string
	for j := 0; j+1 < len(item.Content); j += 2 {
		k, v := item.Content[j], resolve(item.Content[j+1])
		if !sinkOption.MatchString(k.Value) {
			return "", fmt.Errorf("unknown key %q (keys: %s)", k.Value, strings.Join(sinkKeys, ", "))
		}
		values, err := fileList(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", k.Value, err)
		}
		fields = append(fields, k.Value+"="+strings.Join(values, ";"))
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	if err := w.Write(fields); err != nil {
		return "", err
	}
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n"), w.Error()
}

// applyConfigFile gives each flag of fs the file's value, unless the
// command line or the environment set it, noting where each came from.
func (e *env) applyConfigFile(fs *pflag.FlagSet, c *configFile) error {
	for _, v := range c.values {
		f := fs.Lookup(v.flag)
		if f == nil || f.Changed || e.fromEnv[v.flag] != "" || !e.isConfigFlag(f) {
			continue // not this command's, or set by a flag or a variable, which win
		}
		var err error
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			err = sv.Replace(v.values)
		} else {
			err = f.Value.Set(v.values[0])
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w (it sets --%s: %s)", c.where(v), v.key, err, f.Name, f.Usage)
		}
		e.fromFile[v.flag] = c.where(v)
	}
	return nil
}

// secretFileVars are the variables that name a file holding a secret, for
// the flags whose values are credentials: a secret kept in a file (a
// Docker or systemd credential) stays out of the environment, which
// every child process and /proc/PID/environ show.
var secretFileVars = map[string]string{ //nolint:gosec // G101: names of environment variables, not their values
	"admin-token":   "KYCD_ADMIN_TOKEN_FILE",
	"ralio-secret":  "KYCD_RALIO_SECRETS_FILE",
	"sink-secret":   "KYCD_SINK_SECRET_FILE",
	"ralio-api-key": "KYCD_RALIO_API_KEY_FILE",
}

// withSecretFiles returns getenv with the variable of each secret flag of
// fs that the command line did not set read from its *_FILE twin when
// that is set: the file's content without its trailing newline; a list
// (KYCD_RALIO_SECRETS_FILE, KYCD_SINK_SECRET_FILE) one value a line or
// comma-separated. It names each variable so read in fromVars. Both a
// variable and its twin set is an error, and so is a file that cannot be
// read or is empty.
func withSecretFiles(fs *pflag.FlagSet, getenv func(string) string) (func(string) string, map[string]string, error) {
	values, fromVars := map[string]string{}, map[string]string{}
	for _, flag := range slices.Sorted(maps.Keys(secretFileVars)) {
		fileVar := secretFileVars[flag]
		f := fs.Lookup(flag)
		path := getenv(fileVar)
		if f == nil || f.Changed || path == "" {
			continue
		}
		name := envTwins[flag]
		if getenv(name) != "" {
			return nil, nil, fmt.Errorf("both %s and %s are set: set one (they give --%s)", name, fileVar, flag)
		}
		b, err := os.ReadFile(path) //nolint:gosec // G304: the file the operator named
		if err != nil {
			return nil, nil, fmt.Errorf("%s: cannot read the secret of --%s: %w", fileVar, flag, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if _, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(strings.Fields(strings.ReplaceAll(v, ",", " ")), ",")
		}
		if v == "" {
			return nil, nil, fmt.Errorf("%s=%s: the file is empty; want the secret of --%s", fileVar, path, flag)
		}
		values[name], fromVars[name] = v, fileVar
	}
	if len(values) == 0 {
		return getenv, fromVars, nil
	}
	return func(k string) string {
		if v, ok := values[k]; ok {
			return v
		}
		return getenv(k)
	}, fromVars, nil
}
