package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kycd/kycd"
)

func TestDescribeShowsTheMessageNotTheLayers(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("sqlite: session: %w", kycd.Errorf(kycd.ENOTFOUND, "session 1 not found")), "session 1 not found"},
		{fmt.Errorf("replay: %w", &kycd.Error{Code: kycd.EINVALID, Message: "not a valid event", Err: errors.New("id must be a UUID")}), "not a valid event: id must be a UUID"},
		{errors.New("--addr x: want HOST:PORT"), "--addr x: want HOST:PORT"},
	}
	for _, tt := range tests {
		if got := describe(tt.err); got != tt.want {
			t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
