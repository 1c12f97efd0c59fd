package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
)

// Overload is a 503 that says when to retry, whichever part is overloaded;
// the integration tests cannot make the server this busy on purpose.
func TestOverloadIsRetryLater(t *testing.T) {
	for _, err := range []error{auth.ErrBusy, api.ErrBusy} {
		p := toProblem(fmt.Errorf("handler: %w", err))
		if p.kind.status != http.StatusServiceUnavailable || p.headers["Retry-After"] == "" {
			t.Errorf("%v → %d with Retry-After %q, want 503 with a Retry-After", err, p.kind.status, p.headers["Retry-After"])
		}
	}
}
