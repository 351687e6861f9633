package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kycd/kycd"
)

// secretFlags are the flags whose values are credentials: kycd config
// check says whether they are set, never what they are.
var secretFlags = map[string]bool{"admin-token": true, "ralio-secret": true, "sink-secret": true, "ralio-api-key": true}

// shownURLFlags are the flags whose values are URLs that may hold a
// password or a token: shown through kycd.RedactURL.
var shownURLFlags = map[string]bool{"database": true, "ralio-api-url": true}

func configCmd(e *env) *cobra.Command {
	cmd := group("config", "Check serve's configuration")
	check := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Check serve's configuration and print it as serve would run with it, secrets hidden",
		Long: `Read serve's configuration as kycd serve would (its flags given here, the
environment, the configuration file of --config or KYCD_CONFIG), check it as
kycd serve checks it at start (without opening the database or listening),
and print every setting with where its value came from: a flag, an
environment variable, a line of the file, or the default. Secrets (tokens,
webhook secrets, the REST API key, the passwords and tokens in URLs) are
never printed: a secret shows as hidden, or not set.

Naming the setting and where it was set, it exits 2 for a value that is
invalid (as every command does) and 1 when serve would refuse to start with
valid values (such as no admin token on an address other machines reach).`,
		Example: `  kycd config check --config /etc/kycd/kycd.yaml
  KYCD_CONFIG=/etc/kycd/kycd.yaml kycd config check --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := e.cfg.checkServe(); err != nil {
				return err
			}
			if _, err := e.guidance(); err != nil {
				return err
			}
			rep := e.effectiveConfig(cmd.Flags())
			if e.cfg.JSON {
				return printJSON(e.stdout, rep)
			}
			printEffectiveConfig(e, rep)
			return nil
		},
	}
	e.use(check, append(slices.Clone(serveFlags), "json")...)
	cmd.AddCommand(check)
	return cmd
}

// effectiveConfig is serve's configuration as kycd config check prints it.
type effectiveConfig struct {
	File     string          `json:"configFile,omitempty"`
	Settings []settingSource `json:"settings"`
	Sinks    []effectiveSink `json:"sinks"`
	Warnings []string        `json:"warnings,omitempty"`
}

// settingSource is one setting, its value as shown, and where it came
// from.
type settingSource struct {
	Key    string `json:"key"` // in the configuration file
	Flag   string `json:"flag"`
	Env    string `json:"env,omitempty"`
	Value  string `json:"value"`            // "" when unset; a secret's is "hidden" when set
	Secret bool   `json:"secret,omitempty"` // a credential, never shown
	Source string `json:"source"`           // flag, env NAME, file PATH:LINE, or default
}

// effectiveSink is a configured sink, without its secrets.
type effectiveSink struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	URL     string   `json:"url,omitempty"` // through kycd.RedactURL
	Events  []string `json:"events,omitempty"`
	Secrets int      `json:"secrets,omitempty"` // its own signing secrets, hidden
}

// effectiveConfig describes every setting of serve in fs.
func (e *env) effectiveConfig(fs *pflag.FlagSet) effectiveConfig {
	rep := effectiveConfig{File: e.cfg.ConfigFile, Settings: []settingSource{}}
	for _, name := range fileFlags() {
		f := fs.Lookup(name)
		s := settingSource{Key: fileKey(name), Flag: "--" + name, Env: envTwins[name], Secret: secretFlags[name], Source: "default"}
		switch {
		case f.Changed:
			s.Source = "flag"
		case e.fromEnv[name] != "":
			s.Source = "env " + e.fromEnv[name]
		case e.fromFile[name] != "":
			s.Source = "file " + e.fromFile[name]
		}
		s.Value = shownValue(f)
		if name == "sink" {
			s.Value = fmt.Sprintf("%d sinks", len(e.sinkConfigs()))
		}
		rep.Settings = append(rep.Settings, s)
	}
	for _, k := range e.sinkConfigs() {
		s := effectiveSink{Name: k.Name, Type: k.Type, Events: k.Events, Secrets: len(k.Secrets)}
		if k.URL != "" {
			s.URL = kycd.RedactURL(k.URL)
		}
		rep.Sinks = append(rep.Sinks, s)
	}
	if !isLoopback(e.cfg.Addr) {
		return rep
	}
	for _, w := range e.cfg.weakSecrets() {
		rep.Warnings = append(rep.Warnings, "weak secret, accepted only because --addr is a loopback address: "+w)
	}
	return rep
}

// shownValue is f's value fit to print: a secret hidden, a URL redacted,
// a list comma-separated.
func shownValue(f *pflag.Flag) string {
	var v string
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		v = strings.Join(sv.GetSlice(), ",")
	} else {
		v = f.Value.String()
	}
	switch {
	case v == "":
		return ""
	case secretFlags[f.Name]:
		return "hidden"
	case shownURLFlags[f.Name]:
		return kycd.RedactURL(v)
	}
	return v
}

// printEffectiveConfig prints rep for a person.
func printEffectiveConfig(e *env, rep effectiveConfig) {
	if rep.File != "" {
		fmt.Fprintf(e.stdout, "configuration file: %s\n\n", shown(rep.File))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
	for _, s := range rep.Settings {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, shown(cmp.Or(s.Value, "-")), shown(s.Source))
	}
	_ = tw.Flush()
	fmt.Fprintln(e.stdout, "\nsinks:")
	tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tURL\tEVENTS\tSECRET")
	for _, k := range rep.Sinks {
		secret := "-"
		if k.Secrets > 0 {
			secret = fmt.Sprintf("%d hidden", k.Secrets)
		} else if k.Type == sinkHTTP {
			secret = "--sink-secret's"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", shown(k.Name), k.Type, shown(cmp.Or(k.URL, "-")), shown(cmp.Or(strings.Join(k.Events, ","), "every type")), secret)
	}
	_ = tw.Flush()
	for _, w := range rep.Warnings {
		fmt.Fprintf(e.stdout, "\nwarning: %s\n", shown(w))
	}
	fmt.Fprintln(e.stdout, "\nthe configuration is valid")
}
