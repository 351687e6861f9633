package logsink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sink/logsink"
)

func TestOneLinePerNotificationWithoutPersonalData(t *testing.T) {
	var out bytes.Buffer
	s := logsink.New(&out)
	rejected, _ := json.Marshal(kycd.Notification{ID: "1", Type: kycd.NotifySessionRejected, Failures: []kycd.Failure{{Code: "NO_MATCH"}}})
	invited, _ := json.Marshal(kycd.Notification{ID: "2", Type: kycd.NotifySessionInvited,
		Invitation: &kycd.Invitation{FirstName: "Ana", Email: "ana@example.com", PhoneNumber: "+34900000000", VerificationURL: "https://verify.example.com/s/1"}})
	for _, m := range []kycd.Message{{ID: "1", Type: kycd.NotifySessionRejected, Payload: rejected}, {ID: "2", Type: kycd.NotifySessionInvited, Payload: invited}} {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	for i, line := range lines {
		var n map[string]any
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
	}
	if lines[0] != string(rejected) {
		t.Errorf("rejection line = %s, want the notification unchanged", lines[0])
	}
	messaged, _ := json.Marshal(kycd.Notification{ID: "3", Type: kycd.NotifySessionRejected,
		Failures: []kycd.Failure{{Code: "KYC.NAME.MISMATCH", Message: "The name Ana Erase does not match"}}})
	if err := s.Send(context.Background(), kycd.Message{ID: "3", Type: kycd.NotifySessionRejected, Payload: messaged}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "KYC.NAME.MISMATCH") {
		t.Errorf("a rejection's code was not written: %s", out.String())
	}
	for _, personal := range []string{"Ana", "ana@example.com", "+34900000000", "verify.example.com"} {
		if strings.Contains(out.String(), personal) {
			t.Errorf("%q was written out", personal)
		}
	}
	if !strings.Contains(lines[1], `"type":"kyc.session.invited"`) {
		t.Errorf("invitation line lost its type: %s", lines[1])
	}
}
