package server_test

import (
	"context"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// click is chromedp.Click that copes with a page drawing a list again: the
// dashboard redraws a list when a refresh lands, and a button found a moment
// before may be replaced by an identical one before the click reaches it,
// which chromedp reports as a node it cannot find. A person's click lands on
// the button then on the screen, so the click is tried again on the fresh
// node (for up to 5 s); any other error is the test's.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := chromedp.Click(sel)(ctx, t)
			if err == nil || !replaced(err) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// replaced reports whether err says the node was gone from the page by the
// time the click reached it.
func replaced(err error) bool {
	s := err.Error()
	return strings.Contains(s, "given id") || strings.Contains(s, "not attached") || strings.Contains(s, "No node")
}
