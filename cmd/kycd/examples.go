package main

import "github.com/spf13/cobra"

// examples are the lines of each command's --help Example, by command
// path: a command defined with an Example of its own keeps it.
var examples = map[string]string{ //nolint:gosec // G101: command lines with placeholders ("$RALIO_API_KEY"), no credential
	"kycd audit": `  kycd audit list --action subject.erase`,
	"kycd audit list": `  kycd audit list --actor cli:ana --limit 20
  kycd audit list --target subject:user: --json`,
	"kycd config": `  kycd config check --config /etc/kycd/kycd.yaml`,
	"kycd deliveries": `  kycd deliveries list --state dead --sink crm
  kycd deliveries retry --all-dead --sink crm`,
	"kycd deliveries drop": `  kycd deliveries drop 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10`,
	"kycd deliveries list": `  kycd deliveries list --state dead
  kycd deliveries list --sink crm --type kyc.session.rejected --since 2026-11-01T00:00:00Z
  kycd deliveries list --session 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --json`,
	"kycd deliveries move": `  kycd deliveries move 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --to crm-v2`,
	"kycd deliveries retry": `  kycd deliveries retry 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10
  kycd deliveries retry --all-dead
  kycd deliveries retry --all-dead --sink crm`,
	"kycd deliveries show": `  kycd deliveries show 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10
  kycd deliveries show 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --json | jq '.attempts[-1]'`,
	"kycd events": `  kycd events list --type kyc_session_failed`,
	"kycd events get": `  kycd events get 550e8400-e29b-41d4-a716-446655440000
  kycd events get 550e8400-e29b-41d4-a716-446655440000 --body`,
	"kycd events list": `  kycd events list
  kycd events list --type kyc_session_failed --all --json`,
	"kycd migrate": `  kycd migrate --database postgres://kycd@db.internal/kycd
  kycd migrate --to 9 --database sqlite:/var/lib/kycd/kycd.db`,
	"kycd healthcheck": `  kycd healthcheck --addr 127.0.0.1:8080
  kycd healthcheck --ready
  kycd healthcheck --url https://kycd.example.com/healthz`,
	"kycd quarantine": `  kycd quarantine list
  kycd quarantine replay 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10`,
	"kycd quarantine discard": `  kycd quarantine discard 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10`,
	"kycd quarantine list": `  kycd quarantine list
  kycd quarantine list --all --limit 500 --json`,
	"kycd quarantine replay": `  kycd quarantine replay 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10
  kycd quarantine replay 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --ralio-secret "$KYCD_RALIO_SECRETS"`,
	"kycd quarantine show": `  kycd quarantine show 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10`,
	"kycd backup": `  kycd backup /var/backups/kycd/kycd-2026-12-08.db --database sqlite:/var/lib/kycd/kycd.db
  kycd backup /var/backups/kycd/latest.db --force --database sqlite:/var/lib/kycd/kycd.db`,
	"kycd restore": `  kycd restore /var/backups/kycd/kycd-2026-12-08.db --database sqlite:/var/lib/kycd/kycd.db --force`,
	"kycd rebuild": `  kycd rebuild --database sqlite:/var/lib/kycd/kycd.db`,
	"kycd reconcile": `  kycd reconcile --ralio-api-url https://api.ralio.example --ralio-api-key "$RALIO_API_KEY"
  kycd reconcile --ralio-api-url https://api.ralio.example --ralio-api-key "$RALIO_API_KEY" --user 0190c3a2-0000-7000-8000-000000000001`,
	"kycd resend": `  kycd resend --event 550e8400-e29b-41d4-a716-446655440000
  kycd resend --notification 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --sink crm`,
	"kycd secrets":      `  kycd secrets show`,
	"kycd secrets show": `  kycd secrets show --json`,
	"kycd send": `  kycd send
  kycd send --type kyc_session_verified --new-id
  kycd send --file event.json --addr 127.0.0.1:8080
  kycd send --count 10000 --concurrency 16`,
	"kycd serve": `  kycd serve
  kycd serve --addr 0.0.0.0:8080 --database postgres://kycd@db.internal/kycd --sink http=https://crm.example/hooks/kyc
  KYCD_ADMIN_TOKEN=$(openssl rand -hex 32) kycd serve --sink name=crm,type=http,url=https://crm.example/hooks/kyc,events=kyc.session.*`,
	"kycd sinks":        `  kycd sinks list`,
	"kycd sinks list":   `  kycd sinks list --json`,
	"kycd sinks resume": `  kycd sinks resume crm`,
	"kycd stats": `  kycd stats
  kycd stats --window 168h --limit 20 --json`,
	"kycd subjects":        `  kycd subjects get 0190c3a2-0000-7000-8000-000000000001`,
	"kycd subjects export": `  kycd subjects export 0190c3a2-0000-7000-8000-000000000001 > subject.json`,
	"kycd subjects get": `  kycd subjects get 0190c3a2-0000-7000-8000-000000000001
  kycd subjects get 0190c3a2-0000-7000-8000-000000000001 --type business`,
	"kycd tokens": `  kycd tokens create support --role viewer`,
	"kycd tokens create": `  kycd tokens create support --role viewer
  kycd tokens create ops-bot --role operator --json`,
	"kycd tokens list":   `  kycd tokens list`,
	"kycd tokens revoke": `  kycd tokens revoke support`,
	"kycd version": `  kycd version
  kycd version --json`,
}

// addExamples gives every command of the tree its examples.
func addExamples(cmd *cobra.Command) {
	if ex, ok := examples[cmd.CommandPath()]; ok && cmd.Example == "" {
		cmd.Example = ex
	}
	for _, c := range cmd.Commands() {
		addExamples(c)
	}
}
