package kycd_test

import (
	"reflect"
	"testing"

	"github.com/kycd/kycd"
)

func TestResendRoute(t *testing.T) {
	routes := []kycd.SinkRoute{
		{Name: "crm", Events: []string{"kyc.session.rejected"}},
		{Name: "bus"},
	}
	tests := []struct {
		sink, typ string
		want      []string
		code      string
	}{
		{"", kycd.NotifySessionRejected, []string{"crm", "bus"}, ""},
		{"", kycd.NotifySessionVerified, []string{"bus"}, ""},
		{"crm", kycd.NotifySessionRejected, []string{"crm"}, ""},
		{"crm", kycd.NotifySessionVerified, nil, kycd.EINVALID}, // its filter does not take it
		{"gone", kycd.NotifySessionRejected, nil, kycd.EINVALID},
	}
	for _, tt := range tests {
		got, err := kycd.ResendRoute(routes, tt.sink)(tt.typ)
		if !reflect.DeepEqual(got, tt.want) || kycd.ErrorCode(err) != tt.code && (tt.code != "" || err != nil) {
			t.Errorf("ResendRoute(%q)(%s) = %v, %v; want %v, %s", tt.sink, tt.typ, got, err, tt.want, tt.code)
		}
	}
	if _, err := kycd.ResendRoute(kycd.Routes(), "")(kycd.NotifySessionRejected); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Errorf("ResendRoute without sinks = %v, want EINVALID", err)
	}
	sinks := []*kycd.SinkInfo{{Name: "crm", Configured: true, Events: []string{"kyc.*"}}, {Name: "old"}}
	if got := kycd.ConfiguredRoutes(sinks); !reflect.DeepEqual(got, []kycd.SinkRoute{{Name: "crm", Events: []string{"kyc.*"}}}) {
		t.Errorf("ConfiguredRoutes = %+v, want crm only", got)
	}
}
