package server_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store/testtool"
)

// screenshot, when set (make screenshot), is where TestSwaggerUI saves its
// screenshot: gen/docs/swagger-ui.png, the picture in the README. Otherwise
// it goes to the test's artifact directory (kept with go test -artifacts), so
// that `make test` does not rewrite a committed file on every run.
var screenshot = flag.String("screenshot", "", "save TestSwaggerUI's screenshot to this file")

// TestSwaggerUI drives /docs in a real browser (Debian's chromium, headless)
// the way a newcomer would: open Swagger UI, sign in through the Authorize
// dialog with email and password (the OAuth2 password flow, whose tokenUrl is
// POST /users/login), run "Create a customer" with the body Swagger UI
// pre-fills from the spec's example, and read the 201 off the page. Then
// reload: the authorization survives, and "Get the signed-in user" answers 200.
func TestSwaggerUI(t *testing.T) {
	browser := findChromium(t)

	e := newEnv(t)
	admin := e.bootstrap()
	base := e.checkedURL()

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(t.TempDir()),
		// A sandbox needs privileges a container does not give; the browser
		// loads nothing but the test server.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The machine has no network: no QUIC, no background fetches,
		// component updates or sync.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 1000),
	)...)
	defer cancelAlloc()
	// The browser lives as long as this context: the whole test, at most.
	ctx, cancelCtx := context.WithTimeout(alloc, 2*time.Minute)
	defer cancelCtx()
	ctx, cancel := chromedp.NewContext(ctx)
	defer cancel()

	// What the page reports: exceptions and Content-Security-Policy
	// violations fail the test; other errors are shown.
	var mu sync.Mutex
	var pageErrors, consoleErrors []string
	consoleCtx, stopConsole := context.WithCancel(ctx)
	console := chromedp.Console(consoleCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case m.Type == chromedp.ConsoleException,
				m.Type == chromedp.ConsoleError && strings.Contains(m.Text, "Content Security Policy"):
				pageErrors = append(pageErrors, m.String()+" at "+m.URL)
			case m.Type == chromedp.ConsoleError:
				consoleErrors = append(consoleErrors, m.String()+" at "+m.URL)
			}
			mu.Unlock()
		}
	}()
	defer func() {
		stopConsole()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, msg := range consoleErrors {
			t.Logf("browser console: %s", msg)
		}
		for _, msg := range pageErrors {
			t.Errorf("browser: %s", msg)
		}
	}()

	const (
		createCustomer = `#operations-Customers-createCustomer`
		currentUser    = `#operations-Users-getCurrentUser`
		// The Authorize dialog's section for the OAuth2 password flow.
		passwordLogin = `//div[contains(@class,"auth-container")][.//h4[contains(normalize-space(.),"passwordLogin")]]`
	)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	fail := func(name string, err error) {
		t.Helper()
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(css(`.swagger-ui`)))
		if len(html) > 4000 {
			html = html[:4000] + "…"
		}
		t.Fatalf("Swagger UI: %s: %v\npage: %s", name, err, html)
	}
	step := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			fail(name, err)
		}
	}
	text := func(name string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			fail(name, err)
		}
		return strings.TrimSpace(v)
	}
	// execute presses an open operation's Execute button and reads the answer.
	execute := func(name, op string) (status, body string) {
		t.Helper()
		const answer = ` .live-responses-table tr.response`
		step(name,
			chromedp.WaitVisible(css(op+` button.execute`)),
			chromedp.Click(css(op+` button.execute`)),
			chromedp.WaitVisible(css(op+answer+` .response-col_status`)),
		)
		return text("read the status", chromedp.Text(css(op+answer+` .response-col_status`))),
			text("read the body", chromedp.Text(css(op+answer+` .response-col_description pre`)))
	}

	step("open /docs",
		chromedp.Navigate(base+"/docs"),
		chromedp.WaitVisible(css(createCustomer)),
	)
	if title := text("read the title", chromedp.Text(css(`.swagger-ui .info .title`))); !strings.Contains(title, "CRM API") {
		t.Errorf("Swagger UI shows title %q, want the spec's", title)
	}

	step("sign in through the Authorize dialog",
		chromedp.Click(css(`.auth-wrapper button.authorize`)),
		chromedp.WaitVisible(css(`#oauth_username`)),
		chromedp.SendKeys(css(`#oauth_username`), admin.Email),
		chromedp.SendKeys(css(`#oauth_password`), admin.password),
		chromedp.Click(chromedp.Search(passwordLogin+`//button[contains(@class,"authorize")]`)),
		// Signed in: the section shows a Logout button.
		chromedp.WaitVisible(chromedp.Search(passwordLogin+`//button[normalize-space(.)="Logout"]`)),
		chromedp.Click(css(`.dialog-ux button.close-modal`)),
		chromedp.WaitNotPresent(css(`.dialog-ux`)),
		chromedp.WaitVisible(css(`.auth-wrapper button.authorize.locked`)),
	)

	step(`open "Create a customer"`,
		chromedp.Click(css(createCustomer+` .opblock-summary-control`)),
		chromedp.WaitVisible(css(createCustomer+` textarea.body-param__text`)),
	)
	prefilled := text("read the pre-filled body", chromedp.Value(css(createCustomer+` textarea.body-param__text`)))
	// The pre-filled body is the spec's example.
	spec := loadedSpec(t)
	example := spec.Paths.Value("/customers").Post.RequestBody.Value.Content.Get("application/json").Example
	var got, want any
	if err := json.Unmarshal([]byte(prefilled), &got); err != nil {
		t.Fatalf("the pre-filled body is not JSON: %v: %s", err, prefilled)
	}
	raw, _ := json.Marshal(example)
	_ = json.Unmarshal(raw, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Swagger UI pre-filled %s, want the spec's example %s", prefilled, raw)
	}

	status, body := execute(`execute "Create a customer"`, createCustomer)
	if status != "201" {
		t.Fatalf("Swagger UI shows status %q for Create a customer, want 201; body: %s", status, body)
	}
	var created gen.Customer
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Email != "margaret@example.com" {
		t.Errorf("Swagger UI shows the body %s (%v), want the created customer", body, err)
	}
	if created.OwnerId == nil || *created.OwnerId != admin.Id {
		t.Errorf("the customer created through Swagger UI is owned by %v, want the signed-in admin %s", created.OwnerId, admin.Id)
	}
	// The server has it, as the API says.
	res, err := e.as(admin.token).GetCustomerWithResponse(t.Context(), created.Id, nil)
	mustStatus(t, res, err, http.StatusOK)

	// Every other operation works on the first try too: listing shows the
	// customer (no pre-filled filter hides it).
	const listCustomers = `#operations-Customers-listCustomers`
	step(`open "List and search customers"`, chromedp.Click(css(listCustomers+` .opblock-summary-control`)))
	status, list := execute(`execute "List and search customers"`, listCustomers)
	if status != "200" || !strings.Contains(list, created.Id) {
		t.Errorf("List and search customers shows %q: %s; want 200 and the customer just created", status, list)
	}
	step("close it", chromedp.Click(css(listCustomers+` .opblock-summary-control`)))

	// The picture for the README: the signed-in page with the operation and
	// its 201 in view.
	step("frame the operation",
		chromedp.EmulateViewport(1280, 1600),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[any](`document.querySelector("`+createCustomer+`").scrollIntoView({block: "start"}); window.scrollBy(0, -12)`)(ctx, tg)
			return err
		}),
		chromedp.Sleep(300*time.Millisecond), // let layout and scrolling settle
	)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		fail("take the screenshot", err)
	}
	path := *screenshot
	if path == "" {
		path = filepath.Join(t.ArtifactDir(), "swagger-ui.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Authorization persists across a reload (persistAuthorization): the
	// Authorize button is still locked, and a protected operation works.
	step("reload and stay signed in",
		chromedp.Reload(),
		chromedp.WaitVisible(css(currentUser)),
		chromedp.WaitVisible(css(`.auth-wrapper button.authorize.locked`)),
		chromedp.Click(css(currentUser+` .opblock-summary-control`)),
	)
	status, me := execute(`execute "Get the signed-in user"`, currentUser)
	if status != "200" || !strings.Contains(me, admin.Email) {
		t.Errorf("after a reload, Get the signed-in user shows %q: %s; want 200 and the admin", status, me)
	}
}

// findChromium returns the browser to drive: $CHROME if set, else Debian's
// chromium (or another Chromium-based browser on PATH).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testtool.Missing(t, "no Chromium for the Swagger UI browser test; install Debian's: apt-get update && apt-get install -y chromium (or set CHROME to a Chromium-based browser)")
	return ""
}
