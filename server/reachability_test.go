package server_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
)

// Every response that openapi.yaml declares is reachable. The harness's
// response checker records every (method, path, status) it validates
// (observed); when the whole package ran, TestMain compares that with the spec
// and fails the run if a declared response was never seen (checkReachability).
//
// TestEveryDeclaredResponseIsReachable causes each declared response of every
// operation on purpose, each by a real cause: a malformed request, a missing
// or insufficient token, an unknown id, a stale If-Match, a record that the
// server cannot read, a closed database. The statuses that no request can
// produce are listed in unreachableResponses, with the reason; the coverage
// check still fails on them until they leave the spec.

// unreachableResponses are declared responses that no request can cause.
var unreachableResponses = map[string]string{}

// reach is one declared response and the request that causes it.
type reach struct {
	op     string // "METHOD /spec/path", as the spec declares the operation
	status int
	typ    string // the problem type of an error response (without urn:crm:problem:)
	cause  string
	do     func(t *testing.T) (*http.Response, []byte)
}

func TestEveryDeclaredResponseIsReachable(t *testing.T) {
	// Parallel: the wait for an idempotency key still in progress (10 s, see
	// below) then overlaps with the package's other parallel tests.
	t.Parallel()
	// Three failed sign-ins lock an account (429).
	e := newEnv(t, withThrottle(api.ThrottleLimits{Window: time.Minute, PerAccountAndIP: 3, PerIP: 1000, PerAccount: 1000}))
	ctx := context.Background()
	db := rawDB(t, e)

	const (
		jsonType  = "application/json"
		mergeType = "application/merge-patch+json"
		formType  = "application/x-www-form-urlencoded"
		wrongType = "text/plain"
		badID     = "not-an-id"
		nowhere   = "0123456789abcdef01234567" // no record has this id
		stale     = `"999"`                    // an ETag no record has
	)
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}` // over the 1 MiB limit

	// The cast: an admin and a member with a customer and an interaction each,
	// records to delete, and records to make unreadable later.
	admin := e.bootstrap()
	member := e.addUser(admin, "Mia Member", gen.Member)
	spare := e.addUser(admin, "Spare User", gen.Member)
	broken := e.addUser(admin, "Broken User", gen.Member)
	brokenSession := e.loginFull(broken.Email, broken.password)
	refreshable := e.loginFull(admin.Email, admin.password)
	leaving := e.loginFull(admin.Email, admin.password)
	unreadableToken := e.loginFull(admin.Email, admin.password)
	ca := e.customer(admin, "Admin Customer")
	cm := e.customer(member, "Member Customer")
	cspare := e.customer(admin, "Spare Customer")
	cbroken := e.customer(admin, "Broken Customer")
	ia := e.interaction(admin, ca, gen.InteractionTypeCall)
	im := e.interaction(member, cm, gen.InteractionTypeNote)
	ispare := e.interaction(admin, ca, gen.InteractionTypeTask)
	ibroken := e.interaction(admin, cm, gen.InteractionTypeEmail)

	send := func(t *testing.T, method, path, token, contentType, body string, headers ...string) (*http.Response, []byte) {
		t.Helper()
		return e.send(t, time.Minute, method, path, token, contentType, body, headers...)
	}
	// A create sent with an Idempotency-Key, for the 422 (the key reused with
	// another body) and the 500 (its record made unreadable).
	keyedUser := `{"name":"Keyed User","email":"keyed.user@example.com","password":"keyed user password"}`
	res, body := send(t, http.MethodPost, "/users", admin.token, jsonType, keyedUser, "Idempotency-Key", "keyed-user")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("keyed create: %d %s", res.StatusCode, body)
	}
	keyedUserLocation := res.Header.Get("Location")

	// A create whose server died after creating and before storing the
	// response for replays: its key stays claimed ("pending"), as
	// ClaimIdempotencyKey left it, until its lease (2 minutes) runs out. A
	// retry waits for the first request to finish, and gives up with 409
	// after 10 s.
	crashedBody := fmt.Sprintf(`{"customer_id":%q,"type":"Meeting"}`, ca.Id)
	res, body = send(t, http.MethodPost, "/interactions", admin.token, jsonType, crashedBody, "Idempotency-Key", "crashed-create")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("keyed create: %d %s", res.StatusCode, body)
	}
	updateRaw(t, db, "idempotency_keys", bson.D{{Key: "headers.Location", Value: res.Header.Get("Location")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "pending"}}}, {Key: "$unset", Value: bson.D{{Key: "status", Value: ""}, {Key: "headers", Value: ""}, {Key: "body", Value: ""}}}})

	userReplace := func(u user, email string) string {
		return fmt.Sprintf(`{"name":%q,"email":%q,"role":%q,"status":"active"}`, u.Name, email, u.Role)
	}
	customerReplace := func(c gen.Customer, email, owner string) string {
		if owner != "" {
			return fmt.Sprintf(`{"name":%q,"email":%q,"status":"active","owner_id":%q}`, c.Name, email, owner)
		}
		return fmt.Sprintf(`{"name":%q,"email":%q,"status":"active"}`, c.Name, email)
	}
	interactionReplace := func(userID, customerID string) string {
		return fmt.Sprintf(`{"user_id":%q,"customer_id":%q,"type":"Call","status":"Open"}`, userID, customerID)
	}
	// row is a reach that sends one request.
	row := func(op string, status int, typ, cause, path, token, contentType, body string, headers ...string) reach {
		method, _, _ := strings.Cut(op, " ")
		return reach{op: op, status: status, typ: typ, cause: cause, do: func(t *testing.T) (*http.Response, []byte) {
			return send(t, method, path, token, contentType, body, headers...)
		}}
	}
	// throttled has a fresh member guess at their current password until the
	// throttle (PerAccountAndIP 3) refuses the next guess.
	throttled := func(op, contentType string, body func(user) string) reach {
		method, _, _ := strings.Cut(op, " ")
		return reach{op: op, status: http.StatusTooManyRequests, typ: "too-many-requests", cause: "a fourth wrong current_password", do: func(t *testing.T) (*http.Response, []byte) {
			u := e.addUser(admin, "Guessing "+method, gen.Member)
			for range 3 {
				res, data := send(t, method, "/users/"+u.Id, u.token, contentType, body(u))
				wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input", "/current_password")
			}
			return send(t, method, "/users/"+u.Id, u.token, contentType, body(u))
		}}
	}
	// notModified reads the record's ETag and sends it back in If-None-Match.
	notModified := func(op, path string) reach {
		return reach{op: op, status: http.StatusNotModified, cause: "If-None-Match holds the current ETag", do: func(t *testing.T) (*http.Response, []byte) {
			res, body := send(t, http.MethodGet, path, admin.token, "", "")
			if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == "" {
				t.Fatalf("GET %s: %d, ETag %q: %s", path, res.StatusCode, res.Header.Get("ETag"), body)
			}
			return send(t, http.MethodGet, path, admin.token, "", "", "If-None-Match", res.Header.Get("ETag"))
		}}
	}

	// Client errors and successes, on a healthy database.
	requests := []reach{
		row("POST /users/login", 200, "", "right password", "/users/login", "", jsonType, fmt.Sprintf(`{"email":%q,"password":%q}`, admin.Email, admin.password)),
		row("POST /users/login", 400, "invalid-input", "no email", "/users/login", "", jsonType, `{"password":"some password"}`),
		row("POST /users/login", 401, "invalid-credentials", "unknown email", "/users/login", "", jsonType, `{"email":"stranger@example.com","password":"some password"}`),
		row("POST /users/login", 413, "payload-too-large", "body over 1 MiB", "/users/login", "", jsonType, big),
		row("POST /users/login", 415, "unsupported-media-type", "XML body", "/users/login", "", "application/xml", `<login/>`),
		{op: "POST /users/login", status: 429, typ: "too-many-requests", cause: "fourth attempt after three failures", do: func(t *testing.T) (*http.Response, []byte) {
			guess := `{"email":"locked@example.com","password":"a wrong guess"}`
			for range 3 {
				if res, body := send(t, http.MethodPost, "/users/login", "", jsonType, guess); res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("failed sign-in: %d %s", res.StatusCode, body)
				}
			}
			return send(t, http.MethodPost, "/users/login", "", jsonType, guess)
		}},

		row("POST /auth/refresh", 200, "", "fresh refresh token", "/auth/refresh", "", jsonType, fmt.Sprintf(`{"refresh_token":%q}`, refreshable.RefreshToken)),
		row("POST /auth/refresh", 400, "invalid-input", "no refresh_token", "/auth/refresh", "", jsonType, `{}`),
		row("POST /auth/refresh", 401, "invalid-credentials", "unknown refresh token", "/auth/refresh", "", jsonType, `{"refresh_token":"no-such-refresh-token"}`),
		row("POST /auth/refresh", 413, "payload-too-large", "body over 1 MiB", "/auth/refresh", "", jsonType, big),
		row("POST /auth/refresh", 415, "unsupported-media-type", "text body", "/auth/refresh", "", wrongType, refreshable.RefreshToken),

		row("POST /auth/token", 200, "", "right password", "/auth/token", "", formType, url.Values{"grant_type": {"password"}, "username": {admin.Email}, "password": {admin.password}}.Encode()),
		row("POST /auth/token", 400, "invalid-input", "no password", "/auth/token", "", formType, url.Values{"grant_type": {"password"}, "username": {admin.Email}}.Encode()),
		row("POST /auth/token", 400, "invalid-credentials", "unknown refresh token", "/auth/token", "", formType, "grant_type=refresh_token&refresh_token=no-such-refresh-token"),
		row("POST /auth/token", 413, "payload-too-large", "body over 1 MiB", "/auth/token", "", formType, big),
		row("POST /auth/token", 415, "unsupported-media-type", "JSON body", "/auth/token", "", jsonType, `{"grant_type":"password"}`),
		{op: "POST /auth/token", status: 429, typ: "too-many-requests", cause: "fourth attempt after three failures", do: func(t *testing.T) (*http.Response, []byte) {
			guess := "grant_type=password&username=locked.token%40example.com&password=a+wrong+guess"
			for range 3 {
				if res, body := send(t, http.MethodPost, "/auth/token", "", formType, guess); res.StatusCode != http.StatusBadRequest {
					t.Fatalf("failed sign-in: %d %s", res.StatusCode, body)
				}
			}
			return send(t, http.MethodPost, "/auth/token", "", formType, guess)
		}},

		row("POST /auth/logout", 204, "", "refresh token", "/auth/logout", "", jsonType, fmt.Sprintf(`{"refresh_token":%q}`, leaving.RefreshToken)),
		row("POST /auth/logout", 400, "malformed-body", "not JSON", "/auth/logout", "", jsonType, `{"refresh_token":`),
		row("POST /auth/logout", 413, "payload-too-large", "body over 1 MiB", "/auth/logout", "", jsonType, big),
		row("POST /auth/logout", 415, "unsupported-media-type", "text body", "/auth/logout", "", wrongType, leaving.RefreshToken),

		row("POST /users", 201, "", "admin creates", "/users", admin.token, jsonType, `{"name":"Row User","email":"row.user@example.com","password":"row user password"}`),
		row("POST /users", 400, "invalid-input", "short password", "/users", admin.token, jsonType, `{"name":"Short","email":"short@example.com","password":"short"}`),
		row("POST /users", 401, "unauthorized", "no token once users exist", "/users", "", jsonType, `{"name":"Anon","email":"anon@example.com","password":"anonymous password"}`),
		row("POST /users", 403, "forbidden", "member creates", "/users", member.token, jsonType, `{"name":"Sneaky","email":"sneaky@example.com","password":"sneaky password"}`),
		row("POST /users", 409, "duplicate", "email taken", "/users", admin.token, jsonType, fmt.Sprintf(`{"name":"Twin","email":%q,"password":"twin password!"}`, member.Email)),
		row("POST /users", 413, "payload-too-large", "body over 1 MiB", "/users", admin.token, jsonType, big),
		row("POST /users", 415, "unsupported-media-type", "form body", "/users", admin.token, "application/x-www-form-urlencoded", "name=Form"),
		row("POST /users", 422, "idempotency-key-reuse", "Idempotency-Key reused with another body", "/users", admin.token, jsonType,
			`{"name":"Other User","email":"other.user@example.com","password":"other user password"}`, "Idempotency-Key", "keyed-user"),

		row("GET /users", 200, "", "list", "/users", admin.token, "", ""),
		row("GET /users", 400, "invalid-input", "limit 0", "/users?limit=0", admin.token, "", ""),
		row("GET /users", 401, "unauthorized", "no token", "/users", "", "", ""),

		row("GET /users/me", 200, "", "signed in", "/users/me", member.token, "", ""),
		row("GET /users/me", 401, "unauthorized", "a token that is no JWT", "/users/me", "not-a-token", "", ""),

		row("GET /users/{id}", 200, "", "read", "/users/"+member.Id, admin.token, "", ""),
		notModified("GET /users/{id}", "/users/"+member.Id),
		notModified("GET /users/me", "/users/me"),
		row("GET /users/{id}", 400, "invalid-input", "malformed id", "/users/"+badID, admin.token, "", ""),
		row("GET /users/{id}", 401, "unauthorized", "no token", "/users/"+member.Id, "", "", ""),
		row("GET /users/{id}", 404, "not-found", "unknown id", "/users/"+nowhere, admin.token, "", ""),

		row("PUT /users/{id}", 200, "", "admin replaces", "/users/"+member.Id, admin.token, jsonType, userReplace(member, member.Email)),
		row("PUT /users/{id}", 400, "invalid-input", "required fields missing", "/users/"+member.Id, admin.token, jsonType, `{"name":"Mia"}`),
		row("PUT /users/{id}", 401, "unauthorized", "no token", "/users/"+member.Id, "", jsonType, userReplace(member, member.Email)),
		row("PUT /users/{id}", 403, "forbidden", "member replaces another", "/users/"+admin.Id, member.token, jsonType, userReplace(admin, admin.Email)),
		row("PUT /users/{id}", 404, "not-found", "unknown id", "/users/"+nowhere, admin.token, jsonType, userReplace(member, "nobody@example.com")),
		row("PUT /users/{id}", 409, "duplicate", "email taken", "/users/"+member.Id, admin.token, jsonType, userReplace(member, admin.Email)),
		row("PUT /users/{id}", 412, "precondition-failed", "stale If-Match", "/users/"+member.Id, admin.token, jsonType, userReplace(member, member.Email), "If-Match", stale),
		row("PUT /users/{id}", 413, "payload-too-large", "body over 1 MiB", "/users/"+member.Id, admin.token, jsonType, big),
		row("PUT /users/{id}", 415, "unsupported-media-type", "text body", "/users/"+member.Id, admin.token, wrongType, "Mia"),

		row("PATCH /users/{id}", 200, "", "member edits own company", "/users/"+member.Id, member.token, mergeType, `{"company":"Member Co"}`),
		row("PATCH /users/{id}", 400, "invalid-input", "unknown role", "/users/"+member.Id, admin.token, mergeType, `{"role":"boss"}`),
		row("PATCH /users/{id}", 401, "unauthorized", "no token", "/users/"+member.Id, "", mergeType, `{"company":"X"}`),
		row("PATCH /users/{id}", 403, "forbidden", "member edits another", "/users/"+admin.Id, member.token, mergeType, `{"company":"X"}`),
		row("PATCH /users/{id}", 404, "not-found", "unknown id", "/users/"+nowhere, admin.token, mergeType, `{"company":"X"}`),
		row("PATCH /users/{id}", 409, "conflict", "the last admin demotes itself", "/users/"+admin.Id, admin.token, mergeType, `{"role":"member"}`),
		row("PATCH /users/{id}", 412, "precondition-failed", "stale If-Match", "/users/"+member.Id, admin.token, mergeType, `{"company":"X"}`, "If-Match", stale),
		row("PATCH /users/{id}", 413, "payload-too-large", "body over 1 MiB", "/users/"+member.Id, admin.token, mergeType, big),
		row("PATCH /users/{id}", 415, "unsupported-media-type", "text body", "/users/"+member.Id, admin.token, wrongType, "company"),

		row("DELETE /users/{id}", 412, "precondition-failed", "stale If-Match", "/users/"+spare.Id, admin.token, "", "", "If-Match", stale),
		row("DELETE /users/{id}", 204, "", "admin deletes", "/users/"+spare.Id, admin.token, "", ""),
		row("DELETE /users/{id}", 400, "invalid-input", "malformed id", "/users/"+badID, admin.token, "", ""),
		row("DELETE /users/{id}", 401, "unauthorized", "no token", "/users/"+member.Id, "", "", ""),
		row("DELETE /users/{id}", 403, "forbidden", "member deletes", "/users/"+admin.Id, member.token, "", ""),
		row("DELETE /users/{id}", 404, "not-found", "unknown id", "/users/"+nowhere, admin.token, "", ""),
		row("DELETE /users/{id}", 409, "conflict", "the user still owns a customer", "/users/"+member.Id, admin.token, "", ""),

		row("GET /customers", 200, "", "list", "/customers", member.token, "", ""),
		row("GET /customers", 400, "invalid-input", "misspelt parameter", "/customers?owner=me", member.token, "", ""),
		row("GET /customers", 401, "unauthorized", "no token", "/customers", "", "", ""),

		row("POST /customers", 201, "", "member creates", "/customers", member.token, jsonType, `{"name":"Row Customer","email":"row.customer@example.org"}`),
		row("POST /customers", 400, "invalid-input", "no email", "/customers", member.token, jsonType, `{"name":"No Email"}`),
		row("POST /customers", 401, "unauthorized", "no token", "/customers", "", jsonType, `{"name":"Anon","email":"anon@example.org"}`),
		row("POST /customers", 403, "forbidden", "member assigns another owner", "/customers", member.token, jsonType, fmt.Sprintf(`{"name":"Gift","email":"gift@example.org","owner_id":%q}`, admin.Id)),
		row("POST /customers", 409, "duplicate", "email taken", "/customers", member.token, jsonType, fmt.Sprintf(`{"name":"Twin","email":%q}`, ca.Email)),
		row("POST /customers", 413, "payload-too-large", "body over 1 MiB", "/customers", member.token, jsonType, big),
		row("POST /customers", 415, "unsupported-media-type", "text body", "/customers", member.token, wrongType, "Customer"),
		row("POST /customers", 422, "unknown-reference", "owner_id of no user", "/customers", admin.token, jsonType, fmt.Sprintf(`{"name":"Orphan","email":"orphan@example.org","owner_id":%q}`, nowhere)),

		row("GET /customers/{id}", 200, "", "read", "/customers/"+ca.Id, member.token, "", ""),
		notModified("GET /customers/{id}", "/customers/"+ca.Id),
		row("GET /customers/{id}", 400, "invalid-input", "malformed id", "/customers/"+badID, member.token, "", ""),
		row("GET /customers/{id}", 401, "unauthorized", "no token", "/customers/"+ca.Id, "", "", ""),
		row("GET /customers/{id}", 404, "not-found", "unknown id", "/customers/"+nowhere, member.token, "", ""),

		row("PUT /customers/{id}", 200, "", "owner replaces", "/customers/"+cm.Id, member.token, jsonType, customerReplace(cm, cm.Email, "")),
		row("PUT /customers/{id}", 400, "invalid-input", "required fields missing", "/customers/"+cm.Id, member.token, jsonType, `{"name":"Only A Name"}`),
		row("PUT /customers/{id}", 401, "unauthorized", "no token", "/customers/"+cm.Id, "", jsonType, customerReplace(cm, cm.Email, "")),
		row("PUT /customers/{id}", 403, "forbidden", "member replaces another's", "/customers/"+ca.Id, member.token, jsonType, customerReplace(ca, ca.Email, "")),
		row("PUT /customers/{id}", 404, "not-found", "unknown id", "/customers/"+nowhere, admin.token, jsonType, customerReplace(ca, "nobody@example.org", "")),
		row("PUT /customers/{id}", 409, "duplicate", "email taken", "/customers/"+ca.Id, admin.token, jsonType, customerReplace(ca, cm.Email, "")),
		row("PUT /customers/{id}", 412, "precondition-failed", "stale If-Match", "/customers/"+ca.Id, admin.token, jsonType, customerReplace(ca, ca.Email, ""), "If-Match", stale),
		row("PUT /customers/{id}", 413, "payload-too-large", "body over 1 MiB", "/customers/"+ca.Id, admin.token, jsonType, big),
		row("PUT /customers/{id}", 415, "unsupported-media-type", "text body", "/customers/"+ca.Id, admin.token, wrongType, "Customer"),
		row("PUT /customers/{id}", 422, "unknown-reference", "owner_id of no user", "/customers/"+ca.Id, admin.token, jsonType, customerReplace(ca, ca.Email, nowhere)),

		row("PATCH /customers/{id}", 200, "", "owner edits", "/customers/"+cm.Id, member.token, mergeType, `{"notes":"called back"}`),
		row("PATCH /customers/{id}", 400, "invalid-input", "unknown status", "/customers/"+cm.Id, member.token, mergeType, `{"status":"gone"}`),
		row("PATCH /customers/{id}", 401, "unauthorized", "no token", "/customers/"+cm.Id, "", mergeType, `{"notes":"x"}`),
		row("PATCH /customers/{id}", 403, "forbidden", "member edits another's", "/customers/"+ca.Id, member.token, mergeType, `{"notes":"x"}`),
		row("PATCH /customers/{id}", 404, "not-found", "unknown id", "/customers/"+nowhere, admin.token, mergeType, `{"notes":"x"}`),
		row("PATCH /customers/{id}", 409, "duplicate", "email taken", "/customers/"+ca.Id, admin.token, mergeType, fmt.Sprintf(`{"email":%q}`, cm.Email)),
		row("PATCH /customers/{id}", 412, "precondition-failed", "stale If-Match", "/customers/"+ca.Id, admin.token, mergeType, `{"notes":"x"}`, "If-Match", stale),
		row("PATCH /customers/{id}", 413, "payload-too-large", "body over 1 MiB", "/customers/"+ca.Id, admin.token, mergeType, big),
		row("PATCH /customers/{id}", 415, "unsupported-media-type", "text body", "/customers/"+ca.Id, admin.token, wrongType, "notes"),
		row("PATCH /customers/{id}", 422, "unknown-reference", "owner_id of no user", "/customers/"+ca.Id, admin.token, mergeType, fmt.Sprintf(`{"owner_id":%q}`, nowhere)),

		row("DELETE /customers/{id}", 412, "precondition-failed", "stale If-Match", "/customers/"+cspare.Id, admin.token, "", "", "If-Match", stale),
		row("DELETE /customers/{id}", 204, "", "admin deletes", "/customers/"+cspare.Id, admin.token, "", ""),
		row("DELETE /customers/{id}", 400, "invalid-input", "cascade not a boolean", "/customers/"+ca.Id+"?cascade=maybe", admin.token, "", ""),
		row("DELETE /customers/{id}", 401, "unauthorized", "no token", "/customers/"+ca.Id, "", "", ""),
		row("DELETE /customers/{id}", 403, "forbidden", "member deletes another's", "/customers/"+ca.Id, member.token, "", ""),
		row("DELETE /customers/{id}", 404, "not-found", "unknown id", "/customers/"+nowhere, admin.token, "", ""),
		row("DELETE /customers/{id}", 409, "conflict", "interactions refer to it", "/customers/"+ca.Id, admin.token, "", ""),

		row("GET /customers/{id}/interactions", 200, "", "timeline", "/customers/"+ca.Id+"/interactions", member.token, "", ""),
		row("GET /customers/{id}/interactions", 400, "invalid-input", "limit over 200", "/customers/"+ca.Id+"/interactions?limit=201", member.token, "", ""),
		row("GET /customers/{id}/interactions", 401, "unauthorized", "no token", "/customers/"+ca.Id+"/interactions", "", "", ""),
		row("GET /customers/{id}/interactions", 404, "not-found", "unknown customer", "/customers/"+nowhere+"/interactions", member.token, "", ""),

		row("GET /interactions", 200, "", "list", "/interactions", member.token, "", ""),
		row("GET /interactions", 400, "invalid-input", "unknown type", "/interactions?type=Fax", member.token, "", ""),
		row("GET /interactions", 401, "unauthorized", "no token", "/interactions", "", "", ""),

		row("POST /interactions", 201, "", "member records own", "/interactions", member.token, jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call"}`, cm.Id)),
		row("POST /interactions", 400, "invalid-input", "no customer_id", "/interactions", member.token, jsonType, `{"type":"Call"}`),
		row("POST /interactions", 401, "unauthorized", "no token", "/interactions", "", jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call"}`, cm.Id)),
		row("POST /interactions", 403, "forbidden", "member records for another", "/interactions", member.token, jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call","user_id":%q}`, cm.Id, admin.Id)),
		row("POST /interactions", 413, "payload-too-large", "body over 1 MiB", "/interactions", member.token, jsonType, big),
		row("POST /interactions", 415, "unsupported-media-type", "text body", "/interactions", member.token, wrongType, "Call"),
		row("POST /interactions", 422, "unknown-reference", "customer_id of no customer", "/interactions", member.token, jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call"}`, nowhere)),

		row("GET /interactions/customer/{customer_id}", 200, "", "legacy timeline", "/interactions/customer/"+ca.Id, member.token, "", ""),
		row("GET /interactions/customer/{customer_id}", 400, "invalid-input", "malformed id", "/interactions/customer/"+badID, member.token, "", ""),
		row("GET /interactions/customer/{customer_id}", 401, "unauthorized", "no token", "/interactions/customer/"+ca.Id, "", "", ""),
		row("GET /interactions/customer/{customer_id}", 404, "not-found", "unknown customer", "/interactions/customer/"+nowhere, member.token, "", ""),

		row("GET /interactions/{id}", 200, "", "read", "/interactions/"+ia.Id, member.token, "", ""),
		notModified("GET /interactions/{id}", "/interactions/"+ia.Id),
		row("GET /interactions/{id}", 400, "invalid-input", "malformed id", "/interactions/"+badID, member.token, "", ""),
		row("GET /interactions/{id}", 401, "unauthorized", "no token", "/interactions/"+ia.Id, "", "", ""),
		row("GET /interactions/{id}", 404, "not-found", "unknown id", "/interactions/"+nowhere, member.token, "", ""),

		row("PUT /interactions/{id}", 200, "", "owner replaces", "/interactions/"+im.Id, member.token, jsonType, interactionReplace(member.Id, cm.Id)),
		row("PUT /interactions/{id}", 400, "invalid-input", "required fields missing", "/interactions/"+im.Id, member.token, jsonType, `{"type":"Call"}`),
		row("PUT /interactions/{id}", 401, "unauthorized", "no token", "/interactions/"+im.Id, "", jsonType, interactionReplace(member.Id, cm.Id)),
		row("PUT /interactions/{id}", 403, "forbidden", "member replaces another's", "/interactions/"+ia.Id, member.token, jsonType, interactionReplace(admin.Id, ca.Id)),
		row("PUT /interactions/{id}", 404, "not-found", "unknown id", "/interactions/"+nowhere, admin.token, jsonType, interactionReplace(admin.Id, ca.Id)),
		row("PUT /interactions/{id}", 412, "precondition-failed", "stale If-Match", "/interactions/"+ia.Id, admin.token, jsonType, interactionReplace(admin.Id, ca.Id), "If-Match", stale),
		row("PUT /interactions/{id}", 413, "payload-too-large", "body over 1 MiB", "/interactions/"+ia.Id, admin.token, jsonType, big),
		row("PUT /interactions/{id}", 415, "unsupported-media-type", "text body", "/interactions/"+ia.Id, admin.token, wrongType, "Call"),
		row("PUT /interactions/{id}", 422, "unknown-reference", "customer_id of no customer", "/interactions/"+ia.Id, admin.token, jsonType, interactionReplace(admin.Id, nowhere)),

		row("PATCH /interactions/{id}", 200, "", "owner edits", "/interactions/"+im.Id, member.token, mergeType, `{"status":"Resolved"}`),
		row("PATCH /interactions/{id}", 400, "invalid-input", "unknown type", "/interactions/"+im.Id, member.token, mergeType, `{"type":"Fax"}`),
		row("PATCH /interactions/{id}", 401, "unauthorized", "no token", "/interactions/"+im.Id, "", mergeType, `{"status":"Open"}`),
		row("PATCH /interactions/{id}", 403, "forbidden", "member edits another's", "/interactions/"+ia.Id, member.token, mergeType, `{"status":"Open"}`),
		row("PATCH /interactions/{id}", 404, "not-found", "unknown id", "/interactions/"+nowhere, admin.token, mergeType, `{"status":"Open"}`),
		row("PATCH /interactions/{id}", 412, "precondition-failed", "stale If-Match", "/interactions/"+ia.Id, admin.token, mergeType, `{"status":"Open"}`, "If-Match", stale),
		row("PATCH /interactions/{id}", 413, "payload-too-large", "body over 1 MiB", "/interactions/"+ia.Id, admin.token, mergeType, big),
		row("PATCH /interactions/{id}", 415, "unsupported-media-type", "text body", "/interactions/"+ia.Id, admin.token, wrongType, "status"),
		row("PATCH /interactions/{id}", 422, "unknown-reference", "customer_id of no customer", "/interactions/"+ia.Id, admin.token, mergeType, fmt.Sprintf(`{"customer_id":%q}`, nowhere)),

		row("DELETE /interactions/{id}", 412, "precondition-failed", "stale If-Match", "/interactions/"+ispare.Id, admin.token, "", "", "If-Match", stale),
		row("DELETE /interactions/{id}", 204, "", "admin deletes", "/interactions/"+ispare.Id, admin.token, "", ""),
		row("DELETE /interactions/{id}", 400, "invalid-input", "malformed id", "/interactions/"+badID, admin.token, "", ""),
		row("DELETE /interactions/{id}", 401, "unauthorized", "no token", "/interactions/"+ia.Id, "", "", ""),
		row("DELETE /interactions/{id}", 403, "forbidden", "member deletes another's", "/interactions/"+ia.Id, member.token, "", ""),
		row("DELETE /interactions/{id}", 404, "not-found", "unknown id", "/interactions/"+nowhere, admin.token, "", ""),

		row("GET /deletions", 200, "", "list", "/deletions", member.token, "", ""),
		row("GET /deletions", 400, "invalid-input", "a kind of record that is none", "/deletions?record=lead", member.token, "", ""),
		row("GET /deletions", 401, "unauthorized", "no token", "/deletions", "", "", ""),

		row("GET /healthz", 200, "", "alive", "/healthz", "", "", ""),
		row("GET /healthz", 400, "invalid-input", "unknown parameter", "/healthz?verbose=1", "", "", ""),
		row("GET /readyz", 200, "", "database answers", "/readyz", "", "", ""),
		row("GET /readyz", 400, "invalid-input", "unknown parameter", "/readyz?verbose=1", "", "", ""),
		row("GET /users/me", 400, "invalid-input", "unknown parameter", "/users/me?verbose=1", member.token, "", ""),
		throttled("PATCH /users/{id}", mergeType, func(u user) string {
			return `{"password":"a brand new password","current_password":"not my password"}`
		}),
		throttled("PUT /users/{id}", jsonType, func(u user) string {
			return fmt.Sprintf(`{"name":%q,"email":%q,"role":"member","status":"active","password":"a brand new password","current_password":"not my password"}`, u.Name, u.Email)
		}),
	}

	// The body limit holds for every request, also for operations that take no
	// body: a client that sends one anyway gets 413, not a server reading it.
	for _, op := range []struct{ op, path string }{
		{"GET /users", "/users"}, {"GET /users/me", "/users/me"}, {"GET /users/{id}", "/users/" + member.Id},
		{"DELETE /users/{id}", "/users/" + member.Id}, {"GET /customers", "/customers"}, {"GET /customers/{id}", "/customers/" + ca.Id},
		{"DELETE /customers/{id}", "/customers/" + ca.Id}, {"GET /customers/{id}/interactions", "/customers/" + ca.Id + "/interactions"},
		{"GET /interactions", "/interactions"}, {"GET /interactions/{id}", "/interactions/" + ia.Id},
		{"DELETE /interactions/{id}", "/interactions/" + ia.Id}, {"GET /interactions/customer/{customer_id}", "/interactions/customer/" + ca.Id},
		{"GET /deletions", "/deletions"}, {"GET /healthz", "/healthz"}, {"GET /readyz", "/readyz"},
	} {
		requests = append(requests, row(op.op, 413, "payload-too-large", "body over 1 MiB on an operation that takes none", op.path, admin.token, jsonType, big))
	}

	// Unreadable records: documents whose fields have types that the server
	// cannot decode (as a faulty import or another program writing to the
	// database leaves them). The server must answer 500 and log the cause.
	unreadable := []reach{
		// The broken user's first request, just before the corruption,
		// cached the principal (for 5 s): the token check passes, and the
		// handler's own look-up fails. (Without the cache the token check
		// fails, and answers 401: see TestUnreadablePrincipalIsAServerError.)
		row("GET /users/me", 500, "internal", "own record unreadable", "/users/me", broken.token, "", ""),
		row("POST /users/login", 500, "internal", "user record unreadable", "/users/login", "", jsonType, fmt.Sprintf(`{"email":%q,"password":%q}`, broken.Email, broken.password)),
		row("POST /auth/refresh", 500, "internal", "user record unreadable", "/auth/refresh", "", jsonType, fmt.Sprintf(`{"refresh_token":%q}`, brokenSession.RefreshToken)),
		row("POST /auth/token", 500, "internal", "user record unreadable", "/auth/token", "", formType, url.Values{"grant_type": {"password"}, "username": {broken.Email}, "password": {broken.password}}.Encode()),
		row("POST /auth/logout", 500, "internal", "refresh token record unreadable", "/auth/logout", "", jsonType, fmt.Sprintf(`{"refresh_token":%q}`, unreadableToken.RefreshToken)),
		row("POST /users", 500, "internal", "idempotency record unreadable", "/users", admin.token, jsonType, keyedUser, "Idempotency-Key", "keyed-user"),
		row("GET /users", 500, "internal", "a user record unreadable", "/users", admin.token, "", ""),
		row("GET /users/{id}", 500, "internal", "record unreadable", "/users/"+broken.Id, admin.token, "", ""),
		row("PUT /users/{id}", 500, "internal", "record unreadable", "/users/"+broken.Id, admin.token, jsonType, userReplace(broken, broken.Email)),
		row("PATCH /users/{id}", 500, "internal", "record unreadable", "/users/"+broken.Id, admin.token, mergeType, `{"company":"X"}`),
		row("DELETE /users/{id}", 500, "internal", "record unreadable", "/users/"+broken.Id, admin.token, "", ""),
		row("GET /customers", 500, "internal", "a customer record unreadable", "/customers", admin.token, "", ""),
		row("POST /customers", 500, "internal", "owner's record unreadable", "/customers", admin.token, jsonType, fmt.Sprintf(`{"name":"Owned","email":"owned@example.org","owner_id":%q}`, broken.Id)),
		row("GET /customers/{id}", 500, "internal", "record unreadable", "/customers/"+cbroken.Id, admin.token, "", ""),
		row("PUT /customers/{id}", 500, "internal", "record unreadable", "/customers/"+cbroken.Id, admin.token, jsonType, customerReplace(cbroken, cbroken.Email, "")),
		row("PATCH /customers/{id}", 500, "internal", "record unreadable", "/customers/"+cbroken.Id, admin.token, mergeType, `{"notes":"x"}`),
		row("DELETE /customers/{id}", 500, "internal", "record unreadable", "/customers/"+cbroken.Id, admin.token, "", ""),
		row("GET /customers/{id}/interactions", 500, "internal", "an interaction record unreadable", "/customers/"+cm.Id+"/interactions", admin.token, "", ""),
		row("GET /interactions", 500, "internal", "an interaction record unreadable", "/interactions", admin.token, "", ""),
		row("POST /interactions", 500, "internal", "customer's record unreadable", "/interactions", admin.token, jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call"}`, cbroken.Id)),
		row("GET /interactions/customer/{customer_id}", 500, "internal", "customer's record unreadable", "/interactions/customer/"+cbroken.Id, admin.token, "", ""),
		row("GET /interactions/{id}", 500, "internal", "record unreadable", "/interactions/"+ibroken.Id, admin.token, "", ""),
		row("PUT /interactions/{id}", 500, "internal", "record unreadable", "/interactions/"+ibroken.Id, admin.token, jsonType, interactionReplace(admin.Id, cm.Id)),
		row("PATCH /interactions/{id}", 500, "internal", "record unreadable", "/interactions/"+ibroken.Id, admin.token, mergeType, `{"status":"Open"}`),
		row("DELETE /interactions/{id}", 500, "internal", "record unreadable", "/interactions/"+ibroken.Id, admin.token, "", ""),
		row("GET /deletions", 500, "internal", "a deletion record unreadable", "/deletions", admin.token, "", ""),
	}

	// The database closed under the running server: 503 wherever it is needed.
	// Tokens are verified without it; the principal comes from the cache or
	// from a look-up that fails with the database.
	unavailable := []reach{}
	for _, r := range []struct{ op, path, contentType, body, token string }{
		{"POST /users/login", "/users/login", jsonType, fmt.Sprintf(`{"email":%q,"password":%q}`, admin.Email, admin.password), ""},
		{"POST /auth/refresh", "/auth/refresh", jsonType, `{"refresh_token":"any-refresh-token"}`, ""},
		{"POST /auth/token", "/auth/token", formType, "grant_type=refresh_token&refresh_token=any-refresh-token", ""},
		{"POST /auth/logout", "/auth/logout", jsonType, `{"refresh_token":"any-refresh-token"}`, ""},
		{"POST /users", "/users", jsonType, `{"name":"Late User","email":"late.user@example.com","password":"late user password"}`, admin.token},
		{"GET /users", "/users", "", "", admin.token},
		{"GET /users/me", "/users/me", "", "", admin.token},
		{"GET /users/{id}", "/users/" + member.Id, "", "", admin.token},
		{"PUT /users/{id}", "/users/" + member.Id, jsonType, userReplace(member, member.Email), admin.token},
		{"PATCH /users/{id}", "/users/" + member.Id, mergeType, `{"company":"X"}`, admin.token},
		{"DELETE /users/{id}", "/users/" + member.Id, "", "", admin.token},
		{"GET /customers", "/customers", "", "", admin.token},
		{"POST /customers", "/customers", jsonType, `{"name":"Late","email":"late@example.org"}`, admin.token},
		{"GET /customers/{id}", "/customers/" + ca.Id, "", "", admin.token},
		{"PUT /customers/{id}", "/customers/" + ca.Id, jsonType, customerReplace(ca, ca.Email, ""), admin.token},
		{"PATCH /customers/{id}", "/customers/" + ca.Id, mergeType, `{"notes":"x"}`, admin.token},
		{"DELETE /customers/{id}", "/customers/" + ca.Id, "", "", admin.token},
		{"GET /customers/{id}/interactions", "/customers/" + ca.Id + "/interactions", "", "", admin.token},
		{"GET /interactions", "/interactions", "", "", admin.token},
		{"POST /interactions", "/interactions", jsonType, fmt.Sprintf(`{"customer_id":%q,"type":"Call"}`, ca.Id), admin.token},
		{"GET /interactions/customer/{customer_id}", "/interactions/customer/" + ca.Id, "", "", admin.token},
		{"GET /interactions/{id}", "/interactions/" + ia.Id, "", "", admin.token},
		{"PUT /interactions/{id}", "/interactions/" + ia.Id, jsonType, interactionReplace(admin.Id, ca.Id), admin.token},
		{"PATCH /interactions/{id}", "/interactions/" + ia.Id, mergeType, `{"status":"Open"}`, admin.token},
		{"DELETE /interactions/{id}", "/interactions/" + ia.Id, "", "", admin.token},
		{"GET /deletions", "/deletions", "", "", admin.token},
		{"GET /readyz", "/readyz", "", "", ""},
	} {
		unavailable = append(unavailable, row(r.op, 503, "unavailable", "database closed", r.path, r.token, r.contentType, r.body))
	}

	// A retry of the create whose server died: 409 after waiting 10 s.
	inProgress := row("POST /interactions", 409, "conflict", "Idempotency-Key still in progress",
		"/interactions", admin.token, jsonType, crashedBody, "Idempotency-Key", "crashed-create")

	covered := map[string]bool{}
	for _, rows := range [][]reach{requests, unreadable, unavailable, {inProgress}} {
		for _, r := range rows {
			covered[fmt.Sprintf("%s %d", r.op, r.status)] = true
		}
	}
	run := func(t *testing.T, rows []reach) {
		for _, r := range rows {
			t.Run(fmt.Sprintf("%s→%d %s", r.op, r.status, r.cause), func(t *testing.T) {
				res, body := r.do(t)
				checkReached(t, e, r, res, body)
			})
		}
	}

	t.Run("phases", func(t *testing.T) {
		t.Run("key in progress", func(t *testing.T) {
			if testing.Short() {
				t.Skip("-short: the retry waits 10 s for the key")
			}
			t.Parallel()
			run(t, []reach{inProgress})
		})
		t.Run("healthy database", func(t *testing.T) {
			t.Parallel()
			run(t, requests)

			// Make records unreadable, the broken user's principal cached first.
			if res, body := send(t, http.MethodGet, "/users/me", broken.token, "", ""); res.StatusCode != http.StatusOK {
				t.Fatalf("GET /users/me: %d %s", res.StatusCode, body)
			}
			updateRaw(t, db, "users", byID(t, broken.Id), bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: 42}, {Key: "role", Value: bson.A{"member"}}, {Key: "revision", Value: "one"}}}})
			updateRaw(t, db, "customers", byID(t, cbroken.Id), bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: 42}, {Key: "tags", Value: "no list"}, {Key: "revision", Value: "one"}}}})
			updateRaw(t, db, "interactions", byID(t, ibroken.Id), bson.D{{Key: "$set", Value: bson.D{{Key: "type", Value: 42}, {Key: "scheduled_at", Value: "tomorrow"}, {Key: "revision", Value: "one"}}}})
			updateRaw(t, db, "refresh_tokens", bson.D{{Key: "_id", Value: auth.HashRefreshToken(unreadableToken.RefreshToken)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "family", Value: 42}}}})
			updateRaw(t, db, "deletions", bson.D{{Key: "record_id", Value: byID(t, ispare.Id)[0].Value}}, bson.D{{Key: "$set", Value: bson.D{{Key: "deleted_at", Value: "yesterday"}}}})
			updateRaw(t, db, "idempotency_keys", bson.D{{Key: "headers.Location", Value: keyedUserLocation}}, bson.D{{Key: "$set", Value: bson.D{{Key: "request_hash", Value: 42}}}})
			t.Run("unreadable records", func(t *testing.T) { run(t, unreadable) })
		})
	})

	if err := e.store.Close(ctx); err != nil {
		t.Fatalf("close the store: %v", err)
	}
	t.Run("database closed", func(t *testing.T) { run(t, unavailable) })

	// Every declared response has its cause here, or a reason why none exists.
	declared, err := declaredResponses()
	if err != nil {
		t.Fatal(err)
	}
	isDeclared := map[string]bool{}
	for _, d := range declared {
		key := fmt.Sprintf("%s %s %d", d.method, d.path, d.status)
		isDeclared[key] = true
		if !covered[key] && unreachableResponses[key] == "" {
			t.Errorf("%s: no request here causes it; add one, or say in unreachableResponses why none can", d)
		}
		if covered[key] && unreachableResponses[key] != "" {
			t.Errorf("%s is listed as unreachable, but a row causes it", d)
		}
	}
	for key := range unreachableResponses {
		if !isDeclared[key] {
			t.Errorf("%s is no longer declared: remove it from unreachableResponses", key)
		}
	}
}

// TestUnreadablePrincipalIsAServerError: a valid token whose user's record
// cannot be read is the server's failure (500, the cause in the log), not the
// client's (401 "invalid token", which sends the client to sign in again and
// logs nothing).
func TestUnreadablePrincipalIsAServerError(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	member := e.addUser(admin, "Mia Member", gen.Member)
	// The member has signed in but made no request yet, so the server has not
	// cached the principal: the next request looks the user up.
	updateRaw(t, rawDB(t, e), "users", byID(t, member.Id),
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: 42}, {Key: "role", Value: bson.A{"member"}}}}})
	res, body := e.send(t, time.Minute, http.MethodGet, "/customers", member.token, "", "")
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("a request whose user's record cannot be read: %d, want 500: %s", res.StatusCode, body)
	}
	wantProblem(t, http.StatusInternalServerError, body, res.StatusCode, "internal")
	if logged := loggedError(e, res.Header.Get("X-Request-ID")); !strings.Contains(logged, "decod") {
		t.Errorf("the log does not give the unreadable record as the cause: %q", logged)
	}
}

// checkReached checks that the response is the declared one the row meant:
// its status, the operation the response checker matched, and for errors the
// problem type; a 500 must come with its cause in the log.
func checkReached(t *testing.T, e *env, r reach, res *http.Response, body []byte) {
	t.Helper()
	if res.StatusCode != r.status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, r.status, body)
	}
	method, path, _ := strings.Cut(r.op, " ")
	if !observed.has(specResponse{method, path, r.status}) {
		t.Errorf("the response checker did not match the request to %s", r.op)
	}
	if r.typ == "" {
		return
	}
	wantProblem(t, r.status, body, res.StatusCode, r.typ)
	switch r.status {
	case http.StatusInternalServerError:
		logged := loggedError(e, res.Header.Get("X-Request-ID"))
		if !strings.Contains(logged, "decod") {
			t.Errorf("the log does not give an unreadable record as the cause of the 500: %q", logged)
		}
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%d without Retry-After", r.status)
		}
	}
}

// loggedError returns the error the server logged for the request id.
func loggedError(e *env, requestID string) string {
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var entry struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Error     string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.RequestID == requestID && entry.Msg == "request failed" {
			return entry.Error
		}
	}
	return ""
}

// byID is the filter for the document with the hex id.
func byID(t *testing.T, hex string) bson.D {
	t.Helper()
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		t.Fatal(err)
	}
	return bson.D{{Key: "_id", Value: id}}
}

// updateRaw changes exactly one document behind the server's back.
func updateRaw(t *testing.T, db *mongo.Database, collection string, filter, update bson.D) {
	t.Helper()
	res, err := db.Collection(collection).UpdateOne(context.Background(), filter, update)
	if err != nil {
		t.Fatalf("update %s: %v", collection, err)
	}
	if res.MatchedCount != 1 {
		t.Fatalf("update %s: %d documents match %v", collection, res.MatchedCount, filter)
	}
}

// wholePackageRan reports whether every test of the package ran: no -run,
// -skip or -list filter, no -short, and not a benchmark run.
func wholePackageRan() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list", "test.bench"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// declaredResponses lists every (method, path, status) that the spec declares.
func declaredResponses() ([]specResponse, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, err
	}
	var out []specResponse
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				status, err := strconv.Atoi(code)
				if err != nil {
					return nil, fmt.Errorf("%s %s: response %q is not a status code", method, path, code)
				}
				out = append(out, specResponse{method, path, status})
			}
		}
	}
	slices.SortFunc(out, func(a, b specResponse) int {
		return strings.Compare(fmt.Sprintf("%s %s %03d", a.path, a.method, a.status), fmt.Sprintf("%s %s %03d", b.path, b.method, b.status))
	})
	return out, nil
}

// checkReachability reports whether every response the spec declares was
// observed by the tests' response checker, and lists those that were not.
func checkReachability(w io.Writer) bool {
	declared, err := declaredResponses()
	if err != nil {
		fmt.Fprintf(w, "FAIL: response coverage: %v\n", err)
		return false
	}
	var missing []specResponse
	for _, r := range declared {
		if !observed.has(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		fmt.Fprintf(w, "response coverage: all %d responses that openapi.yaml declares were observed\n", len(declared))
		return true
	}
	fmt.Fprintf(w, "\nFAIL: response coverage: %d of the %d responses that openapi.yaml declares were never observed:\n", len(missing), len(declared))
	for _, r := range missing {
		why := unreachableResponses[fmt.Sprintf("%s %s %d", r.method, r.path, r.status)]
		if why != "" {
			why = " (unreachable: " + why + "; remove it from openapi.yaml)"
		}
		fmt.Fprintf(w, "\t%s%s\n", r, why)
	}
	fmt.Fprintf(w, "Every declared response must be reachable: cause it in server/reachability_test.go,\nor remove it from openapi.yaml if no request can produce it.\n")
	return false
}

// problemsSeen holds the details of the problem documents that the response
// checker saw, for checkProblemExamples, and their types, for
// checkProblemTypes.
var problemsSeen = &problemDetails{seen: map[string]bool{}, types: map[string]bool{}}

// problemDetails is a set of problem details, each keyed by the problem's
// type and with its numbers blanked out (versions and counts vary), and the
// set of their types, each with its status.
type problemDetails struct {
	mu    sync.Mutex
	seen  map[string]bool
	types map[string]bool
}

var numbers = regexp.MustCompile(`[0-9]+`)

func problemKey(typ, detail string, field bool) string {
	where := "detail"
	if field {
		where = "errors[].detail"
	}
	return typ + " " + where + ": " + numbers.ReplaceAllString(detail, "#")
}

// record notes the details of a problem document.
func (p *problemDetails) record(body []byte) {
	var doc struct {
		Type, Detail string
		Status       int
		Errors       []struct{ Detail string }
	}
	if json.Unmarshal(body, &doc) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.types[fmt.Sprint(doc.Type, " ", doc.Status)] = true
	p.seen[problemKey(doc.Type, doc.Detail, false)] = true
	for _, e := range doc.Errors {
		p.seen[problemKey(doc.Type, e.Detail, true)] = true
	}
}

// checkProblemExamples reports whether the examples of the spec's problem
// responses are real: each detail one the server was seen to write for that
// type of problem. An integrator reads them to learn what the server says.
func checkProblemExamples(w io.Writer) bool {
	spec, err := gen.GetSpec()
	if err != nil {
		fmt.Fprintf(w, "FAIL: problem examples: %v\n", err)
		return false
	}
	var unseen []string
	for _, name := range slices.Sorted(maps.Keys(spec.Components.Responses)) {
		media := spec.Components.Responses[name].Value.Content.Get("application/problem+json")
		if media == nil {
			continue
		}
		example, _ := media.Example.(map[string]any)
		typ, _ := example["type"].(string)
		detail, _ := example["detail"].(string)
		keys := []string{problemKey(typ, detail, false)}
		fields, _ := example["errors"].([]any)
		for _, f := range fields {
			field, _ := f.(map[string]any)
			fieldDetail, _ := field["detail"].(string)
			keys = append(keys, problemKey(typ, fieldDetail, true))
		}
		problemsSeen.mu.Lock()
		for _, key := range keys {
			if !problemsSeen.seen[key] {
				unseen = append(unseen, fmt.Sprintf("%s: %s", name, key))
			}
		}
		problemsSeen.mu.Unlock()
	}
	if len(unseen) == 0 {
		fmt.Fprintln(w, "problem examples: every example of openapi.yaml's problem responses is a detail the server wrote")
		return true
	}
	fmt.Fprintf(w, "\nFAIL: problem examples: the server never wrote these details of the examples of openapi.yaml's problem responses:\n\t%s\n",
		strings.Join(unseen, "\n\t"))
	return false
}

// problemTypeRow is a row of the table of problem types in the description
// of openapi.yaml's Problem.type: "| `urn:crm:problem:…` | 400 | when |".
var problemTypeRow = regexp.MustCompile("(?m)^\\| `(urn:crm:problem:[a-z-]+)` \\| ([0-9]{3}) \\|")

// checkProblemTypes reports whether the table of problem types in the spec
// is the set of types the server was seen to answer, each with its status:
// clients switch on the type, and learn the types from that table.
func checkProblemTypes(w io.Writer) bool {
	spec, err := gen.GetSpec()
	if err != nil {
		fmt.Fprintf(w, "FAIL: problem types: %v\n", err)
		return false
	}
	listed := map[string]bool{}
	description := spec.Components.Schemas["Problem"].Value.Properties["type"].Value.Description
	for _, row := range problemTypeRow.FindAllStringSubmatch(description, -1) {
		listed[row[1]+" "+row[2]] = true
	}
	problemsSeen.mu.Lock()
	defer problemsSeen.mu.Unlock()
	var wrong []string
	for _, t := range slices.Sorted(maps.Keys(problemsSeen.types)) {
		if !listed[t] {
			wrong = append(wrong, t+": answered, but not in the table")
		}
	}
	for _, t := range slices.Sorted(maps.Keys(listed)) {
		if !problemsSeen.types[t] {
			wrong = append(wrong, t+": in the table, but never answered")
		}
	}
	if len(wrong) == 0 {
		fmt.Fprintf(w, "problem types: the %d in openapi.yaml's Problem.type are those the server answered\n", len(listed))
		return true
	}
	fmt.Fprintf(w, "\nFAIL: problem types: openapi.yaml's table in Problem.type differs from what the server answered:\n\t%s\n",
		strings.Join(wrong, "\n\t"))
	return false
}
