package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/store"
)

// Overload is a 503 that says when to retry, whichever part is overloaded;
// the integration tests cannot make the server this busy on purpose.
func TestOverloadIsRetryLater(t *testing.T) {
	for _, err := range []error{auth.ErrBusy, api.ErrBusy} {
		p := toProblem(fmt.Errorf("handler: %w", err), "/customers/:id")
		if p.kind.status != http.StatusServiceUnavailable || p.headers["Retry-After"] == "" {
			t.Errorf("%v → %d with Retry-After %q, want 503 with a Retry-After", err, p.kind.status, p.headers["Retry-After"])
		}
	}
}

// A request whose client hung up fails with the context's error, often from
// the database driver; that is neither the server's fault (500) nor the
// database's (503), and is not logged as an error. Nothing is answered: the
// handler is aborted, which closes the connection, with 499 for the log.
func TestClientThatHungUpIsNotAServerError(t *testing.T) {
	var logged bytes.Buffer
	handle := errorHandler(slog.New(slog.NewJSONHandler(&logged, nil)))
	for _, cause := range []error{
		context.Canceled,
		fmt.Errorf("%w: incomplete read of message header: %w", store.ErrUnavailable, context.Canceled),
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/customers", nil).WithContext(ctx), rec)
		func() {
			defer func() {
				if r := recover(); r != http.ErrAbortHandler {
					t.Errorf("%v: the handler was not aborted (recovered %v)", cause, r)
				}
			}()
			handle(cause, c)
		}()
		if c.Response().Status != 499 || c.Response().Committed || rec.Body.Len() > 0 {
			t.Errorf("%v: status %d for the log, committed %v, body %q; want 499 and nothing written", cause, c.Response().Status, c.Response().Committed, rec.Body)
		}
	}
	if logged.Len() > 0 {
		t.Errorf("logged: %s", logged.String())
	}
	// A request still wanted by its client that fails the same way is the
	// database's problem.
	rec := httptest.NewRecorder()
	handle(fmt.Errorf("%w: %w", store.ErrUnavailable, context.Canceled), echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/customers", nil), rec))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(logged.String(), `"level":"ERROR"`) {
		t.Errorf("the database failing: %d, logged %q", rec.Code, logged.String())
	}
}

// A database operation that ran out of time is logged with what the operator
// can do about it: the same error comes from a database that is down and
// from a list too slow for CRM_DB_TIMEOUT.
func TestTimeoutIsLoggedWithAHint(t *testing.T) {
	var logged bytes.Buffer
	handle := errorHandler(slog.New(slog.NewJSONHandler(&logged, nil)))
	rec := httptest.NewRecorder()
	handle(fmt.Errorf("%w: %w", store.ErrUnavailable, context.DeadlineExceeded), echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/customers", nil), rec))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(logged.String(), "raise CRM_DB_TIMEOUT") {
		t.Errorf("a timed-out operation: %d, logged %q", rec.Code, logged.String())
	}
	logged.Reset()
	handle(fmt.Errorf("%w: connection refused", store.ErrUnavailable), echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/customers", nil), httptest.NewRecorder()))
	if strings.Contains(logged.String(), "CRM_DB_TIMEOUT") {
		t.Errorf("a refused connection is not a timeout: %q", logged.String())
	}
}
