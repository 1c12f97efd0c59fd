package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/server"
)

// The core API end to end: bootstrap, login, every CRUD path, and the error
// answers that the core issue lists.

func TestBootstrapFirstAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	admin := e.bootstrap()
	if admin.Role != gen.Admin || admin.Status != gen.UserStatusActive {
		t.Fatalf("first user is %s/%s, want an active admin", admin.Role, admin.Status)
	}

	// Once a user exists, creating one needs an admin's token.
	pw := "another password"
	res, err := e.client.CreateUserWithResponse(ctx, nil, gen.CreateUserJSONRequestBody{Name: "Eve", Email: "eve@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusUnauthorized, res.Body, res.StatusCode(), "unauthorized")
	if res.HTTPResponse.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}

	// The first user asked for nothing: role member in the body changes nothing.
	me, err := e.as(admin.token).GetCurrentUserWithResponse(ctx, nil)
	mustStatus(t, me, err, http.StatusOK)
	if me.JSON200.Id != admin.Id || me.JSON200.Email != "ada@example.com" {
		t.Errorf("GET /users/me = %+v, want the admin", me.JSON200)
	}
}

func TestBootstrapRoleIsAlwaysAdmin(t *testing.T) {
	e := newEnv(t)
	pw := "first admin password"
	member := gen.Member
	res, err := e.client.CreateUserWithResponse(context.Background(), nil, gen.CreateUserJSONRequestBody{
		Name: "Ada", Email: "ada@example.com", Password: pw, Role: &member,
	})
	mustStatus(t, res, err, http.StatusCreated)
	if res.JSON201.Role != gen.Admin {
		t.Errorf("first user has role %s, want admin", res.JSON201.Role)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()

	// Email is case-insensitive.
	res, err := e.client.LoginUserWithResponse(ctx, gen.LoginUserJSONRequestBody{Email: " ADA@Example.COM ", Password: admin.password})
	mustStatus(t, res, err, http.StatusOK)
	tok := res.JSON200
	if tok.TokenType != gen.Bearer || tok.ExpiresIn != 900 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.User.Id != admin.Id {
		t.Errorf("token response %+v", tok)
	}
	if cc := res.HTTPResponse.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}

	for name, body := range map[string]gen.LoginUserJSONRequestBody{
		"wrong password": {Email: "ada@example.com", Password: "not the password"},
		"unknown email":  {Email: "nobody@example.com", Password: "whatever it is"},
	} {
		res, err := e.client.LoginUserWithResponse(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, http.StatusUnauthorized, res.Body, res.StatusCode(), "invalid-credentials")
		_ = name
	}
}

func TestUserCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()
	c := e.as(admin.token)

	pw := "member password"
	company := "Analytical Engines"
	created, err := c.CreateUserWithResponse(ctx, nil, gen.CreateUserJSONRequestBody{
		Name: "Bob Member", Email: "Bob@Example.com", Password: pw, Company: &company,
	})
	mustStatus(t, created, err, http.StatusCreated)
	bob := created.JSON201
	if bob.Email != "bob@example.com" || bob.Role != gen.Member || bob.Status != gen.UserStatusActive || deref(bob.Company) != company {
		t.Errorf("created %+v", bob)
	}
	if loc := created.HTTPResponse.Header.Get("Location"); loc != "/users/"+bob.Id {
		t.Errorf("Location %q", loc)
	}

	got, err := c.GetUserWithResponse(ctx, bob.Id, nil)
	mustStatus(t, got, err, http.StatusOK)
	if got.JSON200.Id != bob.Id || got.JSON200.Name != "Bob Member" {
		t.Errorf("get %+v", got.JSON200)
	}

	list, err := c.ListUsersWithResponse(ctx, nil)
	mustStatus(t, list, err, http.StatusOK)
	if len(list.JSON200.Data) != 2 {
		t.Errorf("listed %d users, want 2", len(list.JSON200.Data))
	}

	replaced, err := c.ReplaceUserWithResponse(ctx, bob.Id, nil, gen.ReplaceUserJSONRequestBody{
		Name: "Robert Member", Email: "robert@example.com", Role: gen.Member, Status: gen.UserStatusActive,
	})
	mustStatus(t, replaced, err, http.StatusOK)
	if r := replaced.JSON200; r.Name != "Robert Member" || r.Email != "robert@example.com" || r.Company != nil {
		t.Errorf("replaced %+v (PUT without company must clear it)", r)
	}

	patched, err := c.UpdateUserWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, bob.Id, nil, gen.UpdateUserApplicationMergePatchPlusJSONRequestBody{Name: ptr("Rob")})
	mustStatus(t, patched, err, http.StatusOK)
	if patched.JSON200.Name != "Rob" || patched.JSON200.Email != "robert@example.com" {
		t.Errorf("patched %+v", patched.JSON200)
	}

	del, err := c.DeleteUserWithResponse(ctx, bob.Id, nil)
	mustStatus(t, del, err, http.StatusNoContent)
	gone, err := c.GetUserWithResponse(ctx, bob.Id, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusNotFound, gone.Body, gone.StatusCode(), "not-found")
}

func TestCustomerCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()
	c := e.as(admin.token)

	tags := []string{"vip", " vip ", "enterprise"}
	created, err := c.CreateCustomerWithResponse(ctx, nil, gen.CreateCustomerJSONRequestBody{
		Name: "Grace Hopper", Email: "Grace@Example.com", Phone: ptr("+1 555 0100"), Company: ptr("Compilers Inc"),
		Notes: ptr("Met at the fair."), Tags: &tags,
	})
	mustStatus(t, created, err, http.StatusCreated)
	g := created.JSON201
	if g.Email != "grace@example.com" || g.Status != gen.CustomerStatusActive || deref(g.OwnerId) != admin.Id ||
		strings.Join(g.Tags, ",") != "vip,enterprise" {
		t.Errorf("created %+v", g)
	}
	if loc := created.HTTPResponse.Header.Get("Location"); loc != "/customers/"+g.Id {
		t.Errorf("Location %q", loc)
	}

	got, err := c.GetCustomerWithResponse(ctx, g.Id, nil)
	mustStatus(t, got, err, http.StatusOK)
	if got.JSON200.Name != "Grace Hopper" || deref(got.JSON200.Phone) != "+1 555 0100" {
		t.Errorf("get %+v", got.JSON200)
	}

	list, err := c.ListCustomersWithResponse(ctx, nil)
	mustStatus(t, list, err, http.StatusOK)
	if len(list.JSON200.Data) != 1 || list.JSON200.Data[0].Id != g.Id || list.JSON200.NextCursor.IsSpecified() && !list.JSON200.NextCursor.IsNull() {
		t.Errorf("list %s", list.Body)
	}

	replaced, err := c.ReplaceCustomerWithResponse(ctx, g.Id, nil, gen.ReplaceCustomerJSONRequestBody{
		Name: "Grace B. Hopper", Email: "grace@example.com", Status: gen.CustomerStatusInactive,
	})
	mustStatus(t, replaced, err, http.StatusOK)
	if r := replaced.JSON200; r.Name != "Grace B. Hopper" || r.Phone != nil || r.Notes != nil || len(r.Tags) != 0 || deref(r.OwnerId) != admin.Id {
		t.Errorf("replaced %+v: PUT must clear what it leaves out and keep the owner", r)
	}

	// Merge patch: only the given fields change; null clears.
	res, body := e.raw(http.MethodPatch, "/customers/"+g.Id, admin.token, "application/merge-patch+json", `{"phone":"+44 20 7946 0000","notes":null,"status":"active"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d %s", res.StatusCode, body)
	}
	got, err = c.GetCustomerWithResponse(ctx, g.Id, nil)
	mustStatus(t, got, err, http.StatusOK)
	if p := got.JSON200; p.Name != "Grace B. Hopper" || deref(p.Phone) != "+44 20 7946 0000" || p.Status != gen.CustomerStatusActive {
		t.Errorf("after patch %+v", p)
	}

	del, err := c.DeleteCustomerWithResponse(ctx, g.Id, nil)
	mustStatus(t, del, err, http.StatusNoContent)
	again, err := c.DeleteCustomerWithResponse(ctx, g.Id, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusNotFound, again.Body, again.StatusCode(), "not-found")
}

func TestInteractionCRUDAndTimeline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()
	c := e.as(admin.token)
	grace := e.customer(admin, "Grace Hopper")
	other := e.customer(admin, "Alan Turing")

	when := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	created, err := c.CreateInteractionWithResponse(ctx, nil, gen.CreateInteractionJSONRequestBody{
		CustomerId: grace.Id, Type: gen.InteractionTypeMeeting, Description: ptr("Quarterly review"), ScheduledAt: &when,
	})
	mustStatus(t, created, err, http.StatusCreated)
	m := created.JSON201
	if m.UserId != admin.Id || m.Status != gen.Open || m.ScheduledAt == nil || !m.ScheduledAt.Equal(when) {
		t.Errorf("created %+v", m)
	}
	e.interaction(admin, grace, gen.InteractionTypeCall)
	e.interaction(admin, other, gen.InteractionTypeEmail)

	got, err := c.GetInteractionWithResponse(ctx, m.Id, nil)
	mustStatus(t, got, err, http.StatusOK)
	if got.JSON200.Id != m.Id || got.JSON200.Type != gen.InteractionTypeMeeting {
		t.Errorf("get %+v", got.JSON200)
	}

	all, err := c.ListInteractionsWithResponse(ctx, nil)
	mustStatus(t, all, err, http.StatusOK)
	if len(all.JSON200.Data) != 3 {
		t.Errorf("listed %d interactions, want 3", len(all.JSON200.Data))
	}
	timeline, err := c.ListCustomerInteractionsWithResponse(ctx, grace.Id, nil)
	mustStatus(t, timeline, err, http.StatusOK)
	if len(timeline.JSON200.Data) != 2 {
		t.Errorf("timeline has %d interactions, want 2", len(timeline.JSON200.Data))
	}
	for _, it := range timeline.JSON200.Data {
		if it.CustomerId != grace.Id {
			t.Errorf("timeline of %s holds an interaction of %s", grace.Id, it.CustomerId)
		}
	}

	// The original CRM's route answers the same and points at its successor.
	legacy, err := c.ListInteractionsByCustomerLegacyWithResponse(ctx, grace.Id, nil)
	mustStatus(t, legacy, err, http.StatusOK)
	if len(legacy.JSON200.Data) != 2 {
		t.Errorf("legacy route lists %d, want 2", len(legacy.JSON200.Data))
	}
	if h := legacy.HTTPResponse.Header; h.Get("Deprecation") == "" || !strings.Contains(h.Get("Link"), `</customers/`+grace.Id+`/interactions>; rel="successor-version"`) {
		t.Errorf("legacy route headers: Deprecation %q, Link %q", h.Get("Deprecation"), h.Get("Link"))
	}

	replaced, err := c.ReplaceInteractionWithResponse(ctx, m.Id, nil, gen.ReplaceInteractionJSONRequestBody{
		UserId: admin.Id, CustomerId: grace.Id, Type: gen.InteractionTypeMeeting, Status: gen.InProgress,
	})
	mustStatus(t, replaced, err, http.StatusOK)
	if r := replaced.JSON200; r.Status != gen.InProgress || r.Description != nil || r.ScheduledAt != nil {
		t.Errorf("replaced %+v: PUT must clear description and scheduled_at", r)
	}

	res, body := e.raw(http.MethodPatch, "/interactions/"+m.Id, admin.token, "application/json", `{"status":"Resolved","scheduled_at":"2026-12-02T10:00:00Z"}`)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"Resolved"`) || !strings.Contains(string(body), `"scheduled_at":"2026-12-02T10:00:00Z"`) {
		t.Errorf("patch: %d %s", res.StatusCode, body)
	}

	del, err := c.DeleteInteractionWithResponse(ctx, m.Id, nil)
	mustStatus(t, del, err, http.StatusNoContent)
	gone, err := c.GetInteractionWithResponse(ctx, m.Id, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusNotFound, gone.Body, gone.StatusCode(), "not-found")
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	missing := "0123456789abcdef01234567"
	for _, path := range []string{"/users/" + missing, "/customers/" + missing, "/interactions/" + missing,
		"/customers/" + missing + "/interactions", "/interactions/customer/" + missing} {
		res, body := e.raw(http.MethodGet, path, admin.token, "", "")
		wantProblem(t, http.StatusNotFound, body, res.StatusCode, "not-found")
	}
	// A path that no operation has is a 404 problem too, also one that only
	// starts like an operation's path.
	for _, path := range []string{"/nothing/here", "/users/" + admin.Id + "/interactions", "/interactions/" + missing + "/x",
		"/customers/" + missing + "/x", "/users/me/x", "/interactions/customer/" + missing + "/x"} {
		res, body := e.raw(http.MethodGet, path, admin.token, "", "")
		p := wantProblem(t, http.StatusNotFound, body, res.StatusCode, "not-found")
		if p.Detail == nil || !strings.Contains(*p.Detail, "No operation has this path") {
			t.Errorf("%s: %v", path, p.Detail)
		}
	}
}

func TestInvalidInputNamesTheField(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	cases := []struct {
		name, method, path, body string
		fields                   []string
	}{
		{"malformed id", http.MethodGet, "/customers/not-an-id", "", []string{"?id"}},
		{"malformed id in body", http.MethodPost, "/interactions", `{"customer_id":"123","type":"Call"}`, []string{"/customer_id"}},
		{"missing field", http.MethodPost, "/customers", `{"name":"No Email"}`, []string{"/email"}},
		{"wrong type", http.MethodPost, "/customers", `{"name":42,"email":"x@example.com"}`, []string{"/name"}},
		{"unknown enum value", http.MethodPost, "/customers", `{"name":"A","email":"a@example.com","status":"archived"}`, []string{"/status"}},
		{"unknown field", http.MethodPost, "/customers", `{"name":"A","email":"a@example.com","is_admin":true}`, []string{"/is_admin"}},
		{"several fields", http.MethodPost, "/customers", `{"name":"","email":"not-an-email","tags":[""]}`, []string{"/name", "/email", "/tags/0"}},
		{"limit out of range", http.MethodGet, "/customers?limit=500", "", []string{"?limit"}},
		{"limit not a number", http.MethodGet, "/customers?limit=ten", "", []string{"?limit"}},
		{"unknown query parameter", http.MethodGet, "/customers?curser=abc", "", []string{"?curser"}},
		{"null for a required field", http.MethodPatch, "/users/" + admin.Id, `{"name":null}`, []string{"/name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			res, body := e.raw(tc.method, tc.path, admin.token, ct, tc.body)
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.fields...)
		})
	}

	t.Run("unknown parameters say what was meant", func(t *testing.T) {
		for _, tc := range []struct{ query, parameter, hint string }{
			{"tag[]=vip&tag[]=new", "tag[]", "repeat tag= once for each"},
			{"tag[0]=vip", "tag[0]", "repeat tag= once for each"},
			{"limit[]=5", "limit[]", `did you mean "limit"?`},
			{"Owner-ID=" + admin.Id, "Owner-ID", `did you mean "owner_id"?`},
			{"curser=abc", "curser", "is not a parameter of this operation"},
		} {
			res, body := e.raw(http.MethodGet, "/customers?"+tc.query, admin.token, "", "")
			p := wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?"+tc.parameter)
			if detail := (*p.Errors)[0].Detail; !strings.Contains(detail, tc.hint) {
				t.Errorf("%s: %q, want it to say %q", tc.query, detail, tc.hint)
			}
		}
	})
	t.Run("invalid JSON", func(t *testing.T) {
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{"name": "A", "email": `)
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "malformed-body")
	})
	t.Run("no body", func(t *testing.T) {
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", ``)
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input")
	})
	t.Run("wrong content type", func(t *testing.T) {
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "text/plain", `name=A`)
		wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type")
	})
	t.Run("a content coding", func(t *testing.T) {
		for _, coding := range []string{"gzip", "br", "identity, gzip"} {
			res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
				`{"name":"Encoded","email":"encoded@example.com"}`, "Content-Encoding", coding)
			wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type")
			if got := res.Header.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("%s: Accept-Encoding %q, want identity", coding, got)
			}
		}
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
			`{"name":"Plain","email":"plain@example.com"}`, "Content-Encoding", "identity")
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("Content-Encoding: identity: %d %s", res.StatusCode, body)
		}
		e.raw(http.MethodDelete, res.Header.Get("Location"), admin.token, "", "") // the test counts what invalid requests created
	})
	t.Run("the detail says what is invalid", func(t *testing.T) {
		res, body := e.raw(http.MethodGet, "/customers/xyz", admin.token, "", "")
		p := wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?id")
		if deref(p.Detail) != "The request has 1 invalid parameter." {
			t.Errorf("an invalid path parameter: detail %q", deref(p.Detail))
		}
		res, body = e.raw(http.MethodPatch, "/customers/xyz", admin.token, "application/json", `{"name":""}`)
		p = wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?id", "/name")
		if deref(p.Detail) != "The request has 2 invalid values." {
			t.Errorf("an invalid parameter and field: detail %q", deref(p.Detail))
		}
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"name":"A","email":"a@example.com","notes":"` + strings.Repeat("x", 1<<20) + `"}`
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", big)
		wantProblem(t, http.StatusRequestEntityTooLarge, body, res.StatusCode, "payload-too-large")
		// 1 MiB exactly is accepted (Echo's "1M" is 1,000,000 bytes), a byte more is not.
		fits := `{"name":"Padded","email":"padded@example.com"}`
		fits += strings.Repeat(" ", 1<<20-len(fits))
		res, body = e.raw(http.MethodPost, "/customers", admin.token, "application/json", fits)
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("a body of 1 MiB: %d %s", res.StatusCode, body)
		}
		e.raw(http.MethodDelete, res.Header.Get("Location"), admin.token, "", "")
		res, body = e.raw(http.MethodPost, "/customers", admin.token, "application/json", fits+" ")
		wantProblem(t, http.StatusRequestEntityTooLarge, body, res.StatusCode, "payload-too-large")
	})
	t.Run("method not allowed", func(t *testing.T) {
		res, body := e.raw(http.MethodDelete, "/customers", admin.token, "", "")
		wantProblem(t, http.StatusMethodNotAllowed, body, res.StatusCode, "method-not-allowed")
		if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow %q", allow)
		}
	})

	// None of these created anything.
	list, err := e.as(admin.token).ListCustomersWithResponse(context.Background(), nil)
	mustStatus(t, list, err, http.StatusOK)
	if n := len(list.JSON200.Data); n != 0 {
		t.Errorf("invalid requests created %d customers", n)
	}
}

// Each kind of bad value gets one plain explanation, whichever schema keyword
// happened to fail first: a too-short id and a non-hex one read alike, as do
// limit=0, limit=500 and limit=1.5; lengths are said in characters.
func TestInvalidValuesAreExplained(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	const badID = "must be an id: 24 lower-case hex digits"
	const badLimit = "must be an integer from 1 to 200"
	type request struct{ method, path, body, field, detail string }
	var cases []request
	for _, id := range []string{"zzz", "0123456789abcdef0123456789", "0123456789ABCDEF01234567", "0123456789abcdef0123456g"} {
		cases = append(cases,
			request{http.MethodGet, "/customers/" + id, "", "?id", badID},
			request{http.MethodPost, "/interactions", `{"customer_id":"` + id + `","type":"Call"}`, "/customer_id", badID})
	}
	for _, limit := range []string{"0", "-1", "500", "1.5", "ten"} {
		cases = append(cases, request{http.MethodGet, "/customers?limit=" + limit, "", "?limit", badLimit})
	}
	cases = append(cases,
		request{http.MethodPost, "/customers", `{"name":"A","email":"a@example.com","owner_id":null}`, "/owner_id", "cannot be null"},
		request{http.MethodPost, "/customers", `{"name":"` + strings.Repeat("x", 201) + `","email":"a@example.com"}`, "/name", "must be at most 200 characters long"},
		request{http.MethodPost, "/users", `{"name":"B","email":"b@example.com","password":"short"}`, "/password", "must be at least 8 characters long"},
	)
	for _, tc := range cases {
		ct := ""
		if tc.body != "" {
			ct = "application/json"
		}
		res, body := e.raw(tc.method, tc.path, admin.token, ct, tc.body)
		p := wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.field)
		if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Detail != tc.detail {
			t.Errorf("%s %s %s: %s, want the one detail %q", tc.method, tc.path, tc.body, body, tc.detail)
		}
	}
}

func TestSlashesInPath(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	grace := e.customer(admin, "Grace Hopper")
	// And repeated slashes, as a base URL ending in "/" joined to a path makes.
	// And unreserved characters percent-encoded, which RFC 3986 (section
	// 6.2.2.2) says name the same path.
	for _, path := range []string{"/customers/", "//customers", "/customers//", "//customers//" + grace.Id + "/",
		"/%63ustomers", "/%63ustomers/" + grace.Id, "/customers/%" + strconv.FormatInt(int64(grace.Id[0]), 16) + grace.Id[1:], "/c%75stomers/" + grace.Id} {
		res, body := e.raw(http.MethodGet, path, admin.token, "", "")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), grace.Id) {
			t.Errorf("GET %s = %d %s", path, res.StatusCode, body)
		}
	}
	// An escaped slash is not a separator: no operation has that path, and
	// the problem names the path as it was sent.
	path := "/customers%2F" + grace.Id
	res, body := e.raw(http.MethodGet, path, admin.token, "", "")
	if p := wantProblem(t, http.StatusNotFound, body, res.StatusCode, "not-found"); deref(p.Instance) != path {
		t.Errorf("GET %s: instance %q", path, deref(p.Instance))
	}
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["typ"] = "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "crm", "aud": "crm-api", "sub": admin.Id, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
	}
	with := func(k string, v any) jwt.MapClaims { c := valid(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := valid(); delete(c, k); return c }
	unsignedNone := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"crm","aud":"crm-api","sub":"` + admin.Id + `","exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `}`))
		return h + "." + p + "."
	}

	cases := map[string]string{
		"garbage":                 "not.a.token",
		"expired":                 sign(jwt.SigningMethodHS256, testSecret, with("exp", now.Add(-time.Hour).Unix())),
		"signed with another key": sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-another!!"), valid()),
		"alg none":                unsignedNone(),
		"HS512":                   sign(jwt.SigningMethodHS512, testSecret, valid()),
		"no exp":                  sign(jwt.SigningMethodHS256, testSecret, without("exp")),
		"nbf in the future":       sign(jwt.SigningMethodHS256, testSecret, with("nbf", now.Add(time.Hour).Unix())),
		"wrong issuer":            sign(jwt.SigningMethodHS256, testSecret, with("iss", "someone-else")),
		"wrong audience":          sign(jwt.SigningMethodHS256, testSecret, with("aud", "another-api")),
		"unknown user":            sign(jwt.SigningMethodHS256, testSecret, with("sub", "0123456789abcdef01234567")),
	}
	// Refused alike where a token is optional (POST /users): a client that
	// sent one is told it is invalid, so that it signs in again, and is not
	// taken for an anonymous caller.
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			for _, req := range [][3]string{{http.MethodGet, "/customers", ""}, {http.MethodPost, "/users", `{"name":"Mal","email":"mal@example.com","password":"mallory password"}`}} {
				res, body := e.raw(req[0], req[1], token, "application/json", req[2])
				p := wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "unauthorized")
				if !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("%s %s: WWW-Authenticate %q", req[0], req[1], res.Header.Get("WWW-Authenticate"))
				}
				if strings.Contains(deref(p.Detail), "needs a bearer token") {
					t.Errorf("%s %s: detail %q", req[0], req[1], deref(p.Detail))
				}
			}
		})
	}
	// Without a token, the answer asks for one, and the challenge carries no
	// error code (RFC 6750 section 3.1) — also from POST /users, which needs
	// none for the first user only.
	for _, path := range []string{"/customers", "/users"} {
		t.Run("no token, "+path, func(t *testing.T) {
			method, body := http.MethodGet, ""
			if path == "/users" {
				method, body = http.MethodPost, `{"name":"Anon","email":"anon@example.com","password":"anonymous password"}`
			}
			res, raw := e.raw(method, path, "", "application/json", body)
			p := wantProblem(t, http.StatusUnauthorized, raw, res.StatusCode, "unauthorized")
			if challenge := res.Header.Get("WWW-Authenticate"); challenge != `Bearer realm="crm"` {
				t.Errorf("WWW-Authenticate %q", challenge)
			}
			if !strings.Contains(deref(p.Detail), "needs a bearer token") {
				t.Errorf("detail %q", deref(p.Detail))
			}
		})
	}
	// Without a token, POST /users looks at nothing else once users exist
	// (it hashes no password for anyone who asks).
	res, raw := e.raw(http.MethodPost, "/users", "", "application/json", `{"name":"\u00a0","email":"anon@example.com","password":"anonymous password"}`)
	wantProblem(t, http.StatusUnauthorized, raw, res.StatusCode, "unauthorized")
	t.Run("a valid token passes", func(t *testing.T) {
		res, body := e.raw(http.MethodGet, "/customers", sign(jwt.SigningMethodHS256, testSecret, valid()), "", "")
		if res.StatusCode != http.StatusOK {
			t.Errorf("a well-formed token was refused: %d %s", res.StatusCode, body)
		}
	})
}

func TestDuplicateEmailDifferingInCase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()
	c := e.as(admin.token)

	e.customer(admin, "Grace Hopper") // grace.hopper@example.org
	res, err := c.CreateCustomerWithResponse(ctx, nil, gen.CreateCustomerJSONRequestBody{Name: "Other Grace", Email: "Grace.Hopper@EXAMPLE.org"})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusConflict, res.Body, res.StatusCode(), "duplicate", "/email")

	pw := "some password"
	ures, err := c.CreateUserWithResponse(ctx, nil, gen.CreateUserJSONRequestBody{Name: "Ada Again", Email: "ADA@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusConflict, ures.Body, ures.StatusCode(), "duplicate", "/email")

	// An update onto a taken email is refused too.
	bob := e.addUser(admin, "Bob Member", gen.Member)
	patch, err := c.UpdateUserWithResponse(ctx, bob.Id, nil, gen.UpdateUserJSONRequestBody{Email: ptr("Ada@Example.com")})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusConflict, patch.Body, patch.StatusCode(), "duplicate", "/email")

	// Only ASCII letters are folded: Unicode's lower case of "İ" is "i",
	// which would make another, real address taken, or signed in as.
	for _, email := range []string{"MEHMET\u0130@example.com", "mehmeti@example.com"} {
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{"name":"Unicode","email":"`+email+`"}`)
		if res.StatusCode != http.StatusCreated {
			t.Errorf("%s: %d %s", email, res.StatusCode, body)
		}
	}
	mehmet := e.addUser(admin, "M", gen.Member) // m@example.com
	moved, body := e.raw(http.MethodPatch, "/users/"+mehmet.Id, admin.token, "application/json", `{"email":"MEHMET\u0130@example.com"}`)
	if moved.StatusCode != http.StatusOK {
		t.Fatalf("a dotted İ in an email: %d %s", moved.StatusCode, body)
	}
	login, _ := e.raw(http.MethodPost, "/users/login", "", "application/json", `{"email":"mehmeti@example.com","password":"`+mehmet.password+`"}`)
	if login.StatusCode != http.StatusUnauthorized {
		t.Errorf("signed in as MEHMET\u0130@example.com with mehmeti@example.com: %d", login.StatusCode)
	}

	// One text in its Unicode forms is one email (stored composed, NFC): "é"
	// as one character or as e and a combining accent; the Kelvin sign, which
	// is a K by canonical equivalence.
	for _, pair := range [][2]string{{"ren\u00e9e@example.com", "rene\u0301e@example.com"}, {"kelvin@example.com", "\u212Aelvin@example.com"}} {
		first, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{"name":"Composed","email":"`+pair[0]+`"}`)
		if first.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", pair[0], first.StatusCode, body)
		}
		second, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{"name":"Other form","email":"`+pair[1]+`"}`)
		wantProblem(t, http.StatusConflict, body, second.StatusCode, "duplicate", "/email")
	}
}

func TestInteractionWithUnknownReferences(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.bootstrap()
	c := e.as(admin.token)
	grace := e.customer(admin, "Grace Hopper")
	missing := "0123456789abcdef01234567"

	res, err := c.CreateInteractionWithResponse(ctx, nil, gen.CreateInteractionJSONRequestBody{CustomerId: missing, Type: gen.InteractionTypeCall})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusUnprocessableEntity, res.Body, res.StatusCode(), "unknown-reference", "/customer_id")

	res, err = c.CreateInteractionWithResponse(ctx, nil, gen.CreateInteractionJSONRequestBody{CustomerId: grace.Id, UserId: &missing, Type: gen.InteractionTypeCall})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, http.StatusUnprocessableEntity, res.Body, res.StatusCode(), "unknown-reference", "/user_id")

	list, err := c.ListInteractionsWithResponse(ctx, nil)
	mustStatus(t, list, err, http.StatusOK)
	if len(list.JSON200.Data) != 0 {
		t.Errorf("refused creates left %d interactions", len(list.JSON200.Data))
	}
}

func TestSpecServed(t *testing.T) {
	e := newEnv(t)
	res, body := e.raw(http.MethodGet, "/openapi.yaml", "", "", "")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "openapi: 3.0.3") {
		t.Errorf("/openapi.yaml: %d %.40s", res.StatusCode, body)
	}
	res, body = e.raw(http.MethodGet, "/openapi.json", "", "", "")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), `{"openapi":"3.0.3"`) {
		t.Errorf("/openapi.json: %d %.40s", res.StatusCode, body)
	}
	// The JSON is the YAML, member for member, in the order it was written.
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal(gen.SpecYAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	normalized, _ := json.Marshal(fromYAML)
	_ = json.Unmarshal(normalized, &fromYAML)
	if err := json.Unmarshal(body, &fromJSON); err != nil {
		t.Fatal(err)
	}
	// ... but for its server, which is where it was fetched from.
	served := fromJSON.(map[string]any)["servers"].([]any)[0].(map[string]any)
	if served["url"] != e.url {
		t.Errorf("/openapi.json names the server %v, want %s", served["url"], e.url)
	}
	fromYAML.(map[string]any)["servers"].([]any)[0].(map[string]any)["url"] = e.url
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Error("/openapi.json differs from openapi.yaml")
	}
	if vary := res.Header.Get("Vary"); vary != "Host, X-Forwarded-Proto" {
		t.Errorf("/openapi.json: Vary %q", vary)
	}
	// X-Forwarded-Proto counts from a trusted proxy only: anyone else could
	// make the spec name https where there is none.
	_, spoofed := e.raw(http.MethodGet, "/openapi.yaml", "", "", "", "X-Forwarded-Proto", "https")
	if want := "\n  - url: " + e.url + "\n"; !strings.Contains(string(spoofed), want) {
		t.Errorf("/openapi.yaml with X-Forwarded-Proto from an untrusted client does not hold %q", want)
	}
	local := []*net.IPNet{{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}}
	behindProxy := newEnv(t, func(_ *api.Config, s *server.Config) { s.TrustedProxies = local })
	_, proxied := behindProxy.raw(http.MethodGet, "/openapi.yaml", "", "", "", "X-Forwarded-Proto", "https")
	if want := "\n  - url: " + strings.Replace(behindProxy.url, "http:", "https:", 1) + "\n"; !strings.Contains(string(proxied), want) {
		t.Errorf("/openapi.yaml through a trusted proxy that terminates TLS does not hold %q", want)
	}
	// Swagger UI's copy names the page's own address, whatever the request says.
	_, docs := e.raw(http.MethodGet, "/docs/openapi.json", "", "", "")
	if !strings.Contains(string(docs), `"servers":[{"url":"/"`) {
		t.Errorf("/docs/openapi.json: %.200s", docs)
	}
	user := string(body[strings.Index(string(body), `"User":{`):])
	if id, name := strings.Index(user, `"id":`), strings.Index(user, `"name":`); id < 0 || name < id {
		t.Error("/openapi.json does not keep the spec's member order (User: id before name)")
	}
	res, body = e.raw(http.MethodGet, "/healthz", "", "", "")
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("/healthz: %d %s", res.StatusCode, body)
	}
	// The server's address, opened in a browser, leads to the docs.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/docs" {
		t.Errorf("GET /: %d to %q, want 302 to /docs", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	res, _ := e.raw(http.MethodGet, "/healthz", "", "", "", "X-Request-ID", "trace-abc.123")
	if got := res.Header.Get("X-Request-ID"); got != "trace-abc.123" {
		t.Errorf("X-Request-ID %q, want the client's", got)
	}
	res, _ = e.raw(http.MethodGet, "/healthz", "", "", "", "X-Request-ID", "bad id\twith junk")
	if got := res.Header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \t") {
		t.Errorf("X-Request-ID %q, want a generated one", got)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"trace-abc.123"`) {
		t.Error("the access log does not carry the request id")
	}
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// TestHeadIsGetWithoutBody checks HEAD wherever GET is served: the same
// status and headers, no body, and the token check and validation of the GET.
func TestHeadIsGetWithoutBody(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	grace := e.customer(admin, "Grace Hopper")
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/healthz", "", http.StatusOK},
		{"/openapi.json", "", http.StatusOK},
		{"/customers/" + grace.Id, admin.token, http.StatusOK},
		{"/customers?limit=1", admin.token, http.StatusOK},
		{"/customers", "", http.StatusUnauthorized},
		{"/customers?limit=0", admin.token, http.StatusBadRequest},
		{"/customers/0123456789abcdef01234567", admin.token, http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			get, getBody := e.raw(http.MethodGet, tc.path, tc.token, "", "")
			head, _ := e.raw(http.MethodHead, tc.path, tc.token, "", "")
			if head.StatusCode != tc.status || get.StatusCode != tc.status {
				t.Fatalf("HEAD %d, GET %d, want %d", head.StatusCode, get.StatusCode, tc.status)
			}
			// Go's client reads no body after HEAD; a connection of our own
			// sees what the server sent.
			if after := headOnTheWire(t, e.url, tc.path, tc.token); after != "" {
				t.Errorf("HEAD answered with a body: %q", after)
			}
			for _, h := range []string{"Content-Type", "ETag", "WWW-Authenticate", "Link"} {
				if head.Header.Get(h) != get.Header.Get(h) {
					t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
				}
			}
			if head.ContentLength != get.ContentLength || (get.ContentLength >= 0 && get.ContentLength != int64(len(getBody))) {
				t.Errorf("HEAD Content-Length %d, GET %d with %d bytes", head.ContentLength, get.ContentLength, len(getBody))
			}
		})
	}
	// A path without GET has no HEAD either, and says so.
	res, _ := e.raw(http.MethodHead, "/auth/refresh", "", "", "")
	if res.StatusCode != http.StatusMethodNotAllowed || strings.Contains(res.Header.Get("Allow"), "HEAD") {
		t.Errorf("HEAD /auth/refresh: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	for _, method := range []string{http.MethodDelete, http.MethodOptions} {
		res, _ = e.raw(method, "/customers", admin.token, "", "")
		if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || strings.Count(allow, "HEAD") != 1 {
			t.Errorf("%s /customers: Allow %q, want GET and HEAD among them", method, allow)
		}
	}
	if !strings.Contains(e.logs.String(), `"method":"HEAD"`) {
		t.Error("the access log does not say HEAD")
	}
}

// headOnTheWire sends HEAD path over a connection of its own, closed by the
// server after the response, and returns what came after the headers.
func headOnTheWire(t *testing.T, baseURL, path, token string) string {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "HEAD " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	_, after, found := strings.Cut(string(all), "\r\n\r\n")
	if !found {
		t.Fatalf("no end of headers in %q", all)
	}
	return after
}

// TestEveryUndeclaredMethodIs405: on every path of the spec, a method it does
// not declare gets 405 with an Allow header listing the ones it does, and
// nothing is changed. Echo, finding no handler on a fixed segment
// ("/users/me", "/interactions/customer/…"), would otherwise try the path as
// an id of the route beside it and answer DELETE /users/me with a 400 about
// the id "me".
func TestEveryUndeclaredMethodIs405(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	spec := loadedSpec(t)
	id := "0123456789abcdef01234567"
	for _, path := range slices.Sorted(maps.Keys(spec.Paths.Map())) {
		declared := spec.Paths.Value(path).Operations()
		concrete := pathParam.ReplaceAllString(path, id)
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if declared[method] != nil {
				continue
			}
			t.Run(method+" "+path, func(t *testing.T) {
				res, body := e.raw(method, concrete, admin.token, "application/json", `{}`)
				wantProblem(t, http.StatusMethodNotAllowed, body, res.StatusCode, "method-not-allowed")
				allow := strings.Split(res.Header.Get("Allow"), ", ")
				for m := range declared {
					if !slices.Contains(allow, m) {
						t.Errorf("Allow %q lacks %s", allow, m)
					}
				}
				if slices.Contains(allow, method) {
					t.Errorf("Allow %q lists the refused method", allow)
				}
			})
		}
	}
	me, err := e.as(admin.token).GetCurrentUserWithResponse(context.Background(), nil)
	mustStatus(t, me, err, http.StatusOK)
}

// pathParam is a path template's parameter: {id}.
var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestMediaTypeIsCaseInsensitive: "Application/JSON" is application/json
// (RFC 9110 section 8.3.1), also for the operations that take several media
// types, whose generated handlers pick one by comparing strings.
func TestMediaTypeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	grace := e.customer(admin, "Grace Hopper")
	res, body := e.raw(http.MethodPost, "/users/login", "", "Application/JSON",
		`{"email":"ada@example.com","password":"`+admin.password+`"}`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("login as Application/JSON: %d %s", res.StatusCode, body)
	}
	for _, contentType := range []string{"Application/JSON", "Application/Merge-Patch+Json", "APPLICATION/JSON; charset=UTF-8"} {
		res, body := e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, contentType, `{"notes":"`+contentType+`"}`)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), contentType) {
			t.Errorf("PATCH as %s: %d %s", contentType, res.StatusCode, body)
		}
	}
	res, body = e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, "Text/Plain", `{"notes":"x"}`)
	wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type")
	// JSON is UTF-8; text read as UTF-8 from another charset would be stored
	// garbled, so the body is refused and nothing changes.
	for _, contentType := range []string{"application/json; charset=latin1", `application/merge-patch+json; charset="UTF-16"`} {
		res, body = e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, contentType, `{"notes":"Caf\u00e9"}`)
		p := wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type")
		if !strings.Contains(deref(p.Detail), "UTF-8") {
			t.Errorf("%s: the detail does not say what to send: %s", contentType, body)
		}
	}
	if _, body = e.raw(http.MethodGet, "/customers/"+grace.Id, admin.token, "", ""); strings.Contains(string(body), "Caf") {
		t.Errorf("a body in another charset was stored: %s", body)
	}
	// A Content-Type whose parameters cannot be read is refused as such, not
	// guessed at (the form decoder failed on it: a 500).
	for _, tc := range []struct{ path, contentType, body string }{
		{"/auth/token", "application/x-www-form-urlencoded; charset=", "grant_type=password&username=ada%40example.com&password=x"},
		{"/auth/token", "application/x-www-form-urlencoded; foo", "grant_type=refresh_token&refresh_token=x"},
		{"/customers/" + grace.Id, `application/json; charset="latin1`, `{"notes":"open quote"}`},
	} {
		method := http.MethodPost
		if strings.HasPrefix(tc.path, "/customers") {
			method = http.MethodPatch
		}
		res, body = e.raw(method, tc.path, admin.token, tc.contentType, tc.body)
		if p := wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type"); !strings.Contains(deref(p.Detail), "Content-Type header cannot be read") {
			t.Errorf("%s as %q: %s", tc.path, tc.contentType, body)
		}
	}
	// US-ASCII text is UTF-8 text.
	res, body = e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, "application/json; charset=US-ASCII", `{"notes":"ascii"}`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("PATCH in US-ASCII: %d %s", res.StatusCode, body)
	}
	// A media type the operation does not take is refused as such, and an
	// operation that reads no body ignores one, whatever its charset.
	res, body = e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, "text/plain; charset=latin1", `x`)
	if p := wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type"); !strings.Contains(deref(p.Detail), "application/json") {
		t.Errorf("text/plain in latin1: the detail does not name the media types taken: %s", body)
	}
	if res, body = e.raw(http.MethodGet, "/customers/"+grace.Id, admin.token, "application/json; charset=latin1", `{}`); res.StatusCode != http.StatusOK {
		t.Errorf("GET with a latin1 body: %d %s", res.StatusCode, body)
	}
}
