package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/gen"
)

// Hostile input and transport hardening, end to end: NoSQL operator injection
// through bodies, forms, query strings and path ids; security headers on every
// kind of response; CORS off by default and on for an allow-list only; and
// error responses that never reveal what runs underneath. Every request of this
// file goes through hostileSend, which bounds its time (a hang fails, it does not
// stall the suite) and checks every 4xx/5xx body for leaked internals.

// hostileTimeout bounds one request: pathological input must be refused fast.
const hostileTimeout = 15 * time.Second

// hostileInternalWords must never appear in an error response: they name the
// database, the engine, the encoding, or come from stack traces and driver
// errors.
var hostileInternalWords = []string{"mongo", "ferret", "sqlite", "bson", "goroutine", ".go:", "e11000", "dup key", "runtime error", "panic"}

// hostileNoLeak fails the test if an error response names the machinery underneath.
func hostileNoLeak(t testing.TB, what string, status int, body []byte) {
	t.Helper()
	if status < 400 {
		return
	}
	low := strings.ToLower(string(body))
	for _, w := range hostileInternalWords {
		if strings.Contains(low, w) {
			t.Errorf("%s → %d: the error response reveals %q: %.300s", what, status, w, body)
		}
	}
}

// hostileSend is e.raw with a deadline and the leak check.
func hostileSend(t testing.TB, e *env, method, path, token, contentType, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	res, data := e.send(t, hostileTimeout, method, path, token, contentType, body, headers...)
	hostileNoLeak(t, method+" "+hostileClip(path, 200), res.StatusCode, data)
	return res, data
}

func hostileClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// hostileCollections are compared before and after every hostile request:
// the records, and the refresh tokens a login or logout injection would touch.
var hostileCollections = []string{"users", "customers", "interactions", "refresh_tokens"}

// hostileSnapshot is every document of the watched collections, in _id order, as
// extended JSON.
type hostileSnapshot map[string][]string

func hostileSnapshotOf(t testing.TB, db *mongo.Database) hostileSnapshot {
	t.Helper()
	ctx := context.Background()
	out := hostileSnapshot{}
	for _, name := range hostileCollections {
		cur, err := db.Collection(name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatalf("snapshot %s: %v", name, err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatalf("snapshot %s: %v", name, err)
		}
		out[name] = make([]string, len(docs))
		for i, d := range docs {
			out[name][i] = d.String()
		}
	}
	return out
}

// diff describes how after differs from s, or returns "".
func (s hostileSnapshot) diff(after hostileSnapshot) string {
	var out []string
	for _, name := range hostileCollections {
		b, a := s[name], after[name]
		if slices.Equal(b, a) {
			continue
		}
		msg := fmt.Sprintf("%s: %d documents before, %d after", name, len(b), len(a))
		for _, doc := range a {
			if !slices.Contains(b, doc) {
				msg += "; new or changed: " + hostileClip(doc, 300)
				break
			}
		}
		out = append(out, msg)
	}
	return strings.Join(out, "\n")
}

// hostileFixture is a populated server for injection tests.
type hostileFixture struct {
	e           *env
	db          *mongo.Database
	admin       user
	member      user
	customer    gen.Customer // owned by member
	interaction gen.Interaction
}

func newHostileFixture(t *testing.T) *hostileFixture {
	// Generous throttling: the few injection logins that reach the password
	// check must get their 401, not a 429 that depends on the order of cases.
	e := newEnv(t, withThrottle(api.ThrottleLimits{Window: time.Minute, PerAccountAndIP: 1000, PerIP: 1000, PerAccount: 1000}))
	admin := e.bootstrap()
	member := e.addUser(admin, "Bob Member", gen.Member)
	c := e.customer(member, "Grace Hopper")
	e.customer(admin, "Alan Turing")
	it := e.interaction(member, c, gen.InteractionTypeCall)
	return &hostileFixture{e: e, db: rawDB(t, e), admin: admin, member: member, customer: c, interaction: it}
}

// hostileNested returns depth levels of open, then leaf, then depth levels of closing.
func hostileNested(open, leaf, closing string, depth int) string {
	return strings.Repeat(open, depth) + leaf + strings.Repeat(closing, depth)
}

// hostileEsc escapes a path segment.
func hostileEsc(s string) string { return url.PathEscape(s) }

// hostileCase is one hostile request and the refusal it must get.
type hostileCase struct {
	name   string
	method string
	// path and body may hold {admin}, {member}, {customer} and {interaction},
	// replaced by those ids.
	path string
	as   string // "admin", "member" or "" (no token)
	ct   string // content type; application/json when body is set and ct is not
	body string
	// status is the expected status (400 when 0); alt is another acceptable one.
	status, alt int
	typ         string   // problem type; invalid-input when "" and status is 400
	fields      []string // what errors[] must name: "/pointer" or "?parameter"
}

func hostileCases(f *hostileFixture) []hostileCase {
	const login, token, form = "/users/login", "/auth/token", "application/x-www-form-urlencoded"
	adminPW := f.admin.password
	oid := `{"$oid":"` + f.customer.Id + `"}`
	sqlish := "000000000000000000000000'||'1'=='1"
	return []hostileCase{
		// Sign-in: an operator for email or password would match any account.
		{name: "login email $ne", method: "POST", path: login, body: `{"email":{"$ne":null},"password":"x"}`, fields: []string{"/email"}},
		{name: "login password $ne", method: "POST", path: login, body: `{"email":"ada@example.com","password":{"$ne":null}}`, fields: []string{"/password"}},
		{name: "login both $gt", method: "POST", path: login, body: `{"email":{"$gt":""},"password":{"$gt":""}}`, fields: []string{"/email", "/password"}},
		{name: "login password $gt", method: "POST", path: login, body: `{"email":"ada@example.com","password":{"$gt":""}}`, fields: []string{"/password"}},
		{name: "login email $regex with the right password", method: "POST", path: login, body: `{"email":{"$regex":".*"},"password":"` + adminPW + `"}`, fields: []string{"/email"}},
		{name: "login email $in with the right password", method: "POST", path: login, body: `{"email":{"$in":["ada@example.com"]},"password":"` + adminPW + `"}`, fields: []string{"/email"}},
		{name: "login $where as an extra member", method: "POST", path: login, body: `{"email":"ada@example.com","password":"x","$where":"return true"}`, fields: []string{"/$where"}},
		{name: "login $or instead of email", method: "POST", path: login, body: `{"$or":[{"email":"ada@example.com"}],"password":"x"}`, fields: []string{"/$or", "/email"}},
		{name: "login \\u0024ne escaped operator", method: "POST", path: login, body: `{"email":{"\u0024ne":null},"password":"x"}`, fields: []string{"/email"}},
		{name: "login email as array", method: "POST", path: login, body: `{"email":["ada@example.com"],"password":"` + adminPW + `"}`, fields: []string{"/email"}},
		{name: "login duplicate key, operator last", method: "POST", path: login, body: `{"email":"ada@example.com","password":"x","password":{"$ne":null}}`, fields: []string{"/password"}},
		{name: "login huge number as email", method: "POST", path: login, body: `{"email":1e309,"password":"x"}`, fields: []string{"/email"}},
		{name: "login regex text as email", method: "POST", path: login, body: `{"email":".*","password":"` + adminPW + `"}`, status: 401, typ: "invalid-credentials"},
		{name: "login anchored regex text as email", method: "POST", path: login, body: `{"email":"^ada","password":"` + adminPW + `"}`, status: 401, typ: "invalid-credentials"},
		{name: "login SQL-style tautology", method: "POST", path: login, body: `{"email":"ada@example.com' || '1'=='1","password":"' or 1=1 --"}`, status: 401, typ: "invalid-credentials"},
		{name: "login form $ne", method: "POST", path: token, ct: form, body: "username[$ne]=x&password[$ne]=x&grant_type=password", fields: []string{"/username", "/password"}},
		{name: "login form password $ne", method: "POST", path: token, ct: form, body: "username=ada%40example.com&password[$ne]=x&grant_type=password", fields: []string{"/password"}},
		{name: "login form username $regex", method: "POST", path: token, ct: form, body: "username[$regex]=.*&password=" + url.QueryEscape(adminPW) + "&grant_type=password", fields: []string{"/username"}},
		{name: "login form grant_type $ne", method: "POST", path: token, ct: form, body: "username=ada%40example.com&password=x&grant_type[$ne]=x", fields: []string{"/grant_type"}},

		// Refresh and logout: an operator would rotate or revoke someone's tokens.
		{name: "refresh token $ne", method: "POST", path: "/auth/refresh", body: `{"refresh_token":{"$ne":null}}`, fields: []string{"/refresh_token"}},
		{name: "logout token $gt", method: "POST", path: "/auth/logout", body: `{"refresh_token":{"$gt":""}}`, fields: []string{"/refresh_token"}},

		// Query strings: operators smuggled into filters.
		{name: "query email[$ne]", method: "GET", path: "/customers?email[$ne]=x", as: "admin", fields: []string{"?email[$ne]"}},
		{name: "query status[$ne]", method: "GET", path: "/customers?status[$ne]=active", as: "admin", fields: []string{"?status[$ne]"}},
		{name: "query q[$regex]", method: "GET", path: "/customers?q[$regex]=.*", as: "admin", fields: []string{"?q[$regex]"}},
		{name: "query owner_id[$gt]", method: "GET", path: "/customers?owner_id[$gt]=", as: "member", fields: []string{"?owner_id[$gt]"}},
		{name: "query $where", method: "GET", path: "/customers?$where=1", as: "admin", fields: []string{"?$where"}},
		{name: "query sort $natural", method: "GET", path: "/customers?sort=" + url.QueryEscape(`{"$natural":1}`), as: "admin", fields: []string{"?sort"}},
		{name: "query owner_id as operator object", method: "GET", path: "/customers?owner_id=" + url.QueryEscape(`{"$ne":null}`), as: "admin", fields: []string{"?owner_id"}},
		{name: "query status as operator object", method: "GET", path: "/customers?status=" + url.QueryEscape(`{"$ne":"active"}`), as: "admin", fields: []string{"?status"}},
		{name: "query tag[$in]", method: "GET", path: "/customers?tag[$in]=vip", as: "admin", fields: []string{"?tag[$in]"}},
		{name: "query cursor as operator object", method: "GET", path: "/customers?cursor=" + url.QueryEscape(`{"$gt":""}`), as: "admin", fields: []string{"?cursor"}},
		{name: "query limit 1e309", method: "GET", path: "/customers?limit=1e309", as: "admin", fields: []string{"?limit"}},
		{name: "query limit 30 digits", method: "GET", path: "/customers?limit=123456789012345678901234567890", as: "admin", fields: []string{"?limit"}},
		{name: "query limit[$gt]", method: "GET", path: "/customers?limit[$gt]=0", as: "admin", fields: []string{"?limit[$gt]"}},
		{name: "query users role[$ne]", method: "GET", path: "/users?role[$ne]=member", as: "member", fields: []string{"?role[$ne]"}},
		{name: "query interactions user_id[$ne]", method: "GET", path: "/interactions?user_id[$ne]=000000000000000000000000", as: "member", fields: []string{"?user_id[$ne]"}},
		{name: "query interactions customer_id object", method: "GET", path: "/interactions?customer_id=" + url.QueryEscape(`{"$gt":""}`), as: "member", fields: []string{"?customer_id"}},
		{name: "query timeline status[$nin]", method: "GET", path: "/customers/{customer}/interactions?status[$nin]=Open", as: "member", fields: []string{"?status[$nin]"}},

		// Bodies: operators as keys, nested in fields, and values of the wrong shape.
		{name: "body $where key", method: "POST", path: "/customers", as: "admin", body: `{"name":"A","email":"a@example.org","$where":"1"}`, fields: []string{"/$where"}},
		{name: "body \\u0024where key", method: "POST", path: "/customers", as: "admin", body: `{"name":"A","email":"a@example.org","\u0024where":"1"}`, fields: []string{"/$where"}},
		{name: "patch $set owner", method: "PATCH", path: "/customers/{customer}", as: "member", ct: "application/merge-patch+json", body: `{"$set":{"owner_id":"{admin}"}}`, fields: []string{"/$set"}},
		{name: "patch $inc on a user", method: "PATCH", path: "/users/{member}", as: "admin", body: `{"$inc":{"revision":1}}`, fields: []string{"/$inc"}},
		{name: "member $set role admin", method: "PATCH", path: "/users/{member}", as: "member", body: `{"$set":{"role":"admin"}}`, alt: 403, fields: []string{"/$set"}},
		{name: "name $ne", method: "POST", path: "/customers", as: "admin", body: `{"name":{"$ne":""},"email":"b@example.org"}`, fields: []string{"/name"}},
		{name: "tags [$gt]", method: "POST", path: "/customers", as: "admin", body: `{"name":"T","email":"t@example.org","tags":[{"$gt":""}]}`, fields: []string{"/tags/0"}},
		{name: "tags $ne object", method: "POST", path: "/customers", as: "admin", body: `{"name":"T","email":"t@example.org","tags":{"$ne":[]}}`, fields: []string{"/tags"}},
		{name: "name as array", method: "POST", path: "/customers", as: "admin", body: `{"name":["A","B"],"email":"c@example.org"}`, fields: []string{"/name"}},
		{name: "email as array", method: "POST", path: "/customers", as: "admin", body: `{"name":"N","email":["d@example.org"]}`, fields: []string{"/email"}},
		{name: "name 1e309", method: "POST", path: "/customers", as: "admin", body: `{"name":1e309,"email":"e@example.org"}`, fields: []string{"/name"}},
		{name: "name 30 digits", method: "POST", path: "/customers", as: "admin", body: `{"name":123456789012345678901234567890,"email":"f@example.org"}`, fields: []string{"/name"}},
		{name: "notes -1e309", method: "POST", path: "/customers", as: "admin", body: `{"name":"N","email":"g@example.org","notes":-1e309}`, fields: []string{"/notes"}},
		{name: "duplicate key, operator last", method: "POST", path: "/customers", as: "admin", body: `{"name":"A","name":{"$ne":1},"email":"h@example.org"}`, fields: []string{"/name"}},
		{name: "patch email $regex", method: "PATCH", path: "/customers/{customer}", as: "admin", body: `{"email":{"$regex":".*"}}`, fields: []string{"/email"}},
		{name: "patch owner_id $ne", method: "PATCH", path: "/customers/{customer}", as: "member", body: `{"owner_id":{"$ne":null}}`, fields: []string{"/owner_id"}},
		{name: "put status $ne", method: "PUT", path: "/customers/{customer}", as: "admin", body: `{"name":"X","email":"x@example.org","status":{"$ne":"inactive"}}`, fields: []string{"/status"}},
		{name: "create user role $ne", method: "POST", path: "/users", as: "admin", body: `{"name":"Eve","email":"eve@example.com","password":"long enough pw","role":{"$ne":"member"}}`, fields: []string{"/role"}},
		{name: "interaction customer_id $oid", method: "POST", path: "/interactions", as: "member", body: `{"customer_id":` + oid + `,"type":"Call"}`, fields: []string{"/customer_id"}},
		{name: "interaction customer_id tautology", method: "POST", path: "/interactions", as: "member", body: `{"customer_id":"` + sqlish + `","type":"Call"}`, fields: []string{"/customer_id"}},
		{name: "interaction type $in", method: "POST", path: "/interactions", as: "member", body: `{"customer_id":"{customer}","type":{"$in":["Call"]}}`, fields: []string{"/type"}},
		{name: "interaction user_id $ne", method: "POST", path: "/interactions", as: "member", body: `{"customer_id":"{customer}","type":"Call","user_id":{"$ne":null}}`, fields: []string{"/user_id"}},
		{name: "patch interaction status $set", method: "PATCH", path: "/interactions/{interaction}", as: "member", body: `{"status":{"$set":"Resolved"}}`, fields: []string{"/status"}},

		// Deep nesting: refused quickly, never a 500 or a hang.
		{name: "name 5000 nested arrays", method: "POST", path: "/customers", as: "admin", body: `{"name":` + hostileNested("[", "1", "]", 5000) + `,"email":"deep1@example.org"}`, fields: []string{"/name"}},
		{name: "name 5000 nested objects", method: "POST", path: "/customers", as: "admin", body: `{"name":` + hostileNested(`{"a":`, "1", "}", 5000) + `,"email":"deep2@example.org"}`, fields: []string{"/name"}},
		{name: "unknown field 5000 nested objects", method: "POST", path: "/customers", as: "admin", body: `{"name":"D","email":"deep3@example.org","x":` + hostileNested(`{"$ne":`, "1", "}", 5000) + `}`, fields: []string{"/x"}},
		{name: "login password 5000 nested objects", method: "POST", path: login, body: `{"email":"ada@example.com","password":` + hostileNested(`{"$ne":`, "null", "}", 5000) + `}`, fields: []string{"/password"}},
		{name: "trailing document with an operator", method: "POST", path: "/customers", as: "admin", body: `{"name":"Trailing","email":"trailing@example.org"} {"$where":"1"}`, typ: "malformed-body"},
		{name: "login trailing document with an operator", method: "POST", path: login, body: `{"email":"ada@example.com","password":"x"}{"password":{"$ne":null}}`, typ: "malformed-body"},
		{name: "5000 unclosed arrays", method: "POST", path: "/customers", as: "admin", body: `{"name":` + strings.Repeat("[", 5000), typ: "malformed-body"},
		{name: "100000 nested arrays", method: "POST", path: "/customers", as: "admin", body: `{"name":` + hostileNested("[", "", "]", 100000) + `,"email":"deep4@example.org"}`, typ: "malformed-body"},
		{name: "nesting over 1 MiB", method: "POST", path: "/customers", as: "admin", body: `{"name":` + hostileNested("[", "", "]", 600000) + `}`, status: 413, typ: "payload-too-large"},

		// Path ids that are operators, traversals or tautologies.
		{name: "path id $ne", method: "GET", path: "/customers/%24ne", as: "admin", fields: []string{"?id"}},
		{name: "path traversal", method: "GET", path: "/customers/..%2f..%2fusers", as: "admin", alt: 404, fields: []string{"?id"}},
		{name: "path id $oid object", method: "GET", path: "/customers/" + hostileEsc(oid), as: "admin", fields: []string{"?id"}},
		{name: "path id tautology", method: "GET", path: "/customers/" + hostileEsc(sqlish), as: "admin", fields: []string{"?id"}},
		{name: "path id with NUL", method: "GET", path: "/users/{admin}%00", as: "admin", fields: []string{"?id"}},
		{name: "deactivate user $ne", method: "PATCH", path: "/users/" + hostileEsc(`{"$ne":null}`), as: "admin", body: `{"status":"inactive"}`, fields: []string{"?id"}},
		{name: "delete customer $gt", method: "DELETE", path: "/customers/" + hostileEsc(`{"$gt":""}`), as: "admin", fields: []string{"?id"}},
		{name: "delete interaction $where", method: "DELETE", path: "/interactions/%24where", as: "admin", fields: []string{"?id"}},
		{name: "timeline of $ne", method: "GET", path: "/customers/" + hostileEsc(`{"$ne":null}`) + "/interactions", as: "admin", fields: []string{"?id"}},
		{name: "legacy timeline of $ne", method: "GET", path: "/interactions/customer/%24ne", as: "admin", fields: []string{"?customer_id"}},
	}
}

// TestInjectionPayloads sends each payload where it could do harm and checks
// that it is refused, that nothing is returned or signs anyone in, and that no
// record changed.
func TestInjectionPayloads(t *testing.T) {
	f := newHostileFixture(t)
	ids := strings.NewReplacer("{admin}", f.admin.Id, "{member}", f.member.Id, "{customer}", f.customer.Id, "{interaction}", f.interaction.Id)
	tokens := map[string]string{"admin": f.admin.token, "member": f.member.token}
	// Records that a refused request must not return.
	records := []string{f.admin.Id, f.member.Id, f.customer.Id, f.interaction.Id}

	cases := hostileCases(f)
	if len(cases) < 25 {
		t.Fatalf("only %d payloads", len(cases))
	}
	before := hostileSnapshotOf(t, f.db)
	for name, atLeast := range map[string]int{"users": 2, "customers": 2, "interactions": 1, "refresh_tokens": 2} {
		if n := len(before[name]); n < atLeast {
			t.Fatalf("the snapshot holds %d %s, want at least %d: it would see no change", n, name, atLeast)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, body := ids.Replace(tc.path), ids.Replace(tc.body)
			ct := tc.ct
			if ct == "" && body != "" {
				ct = "application/json"
			}
			start := time.Now()
			res, data := hostileSend(t, f.e, tc.method, path, tokens[tc.as], ct, body)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to refuse", d.Round(time.Millisecond))
			}
			want, typ := tc.status, tc.typ
			if want == 0 {
				want = http.StatusBadRequest
			}
			fields := tc.fields
			if tc.alt != 0 && res.StatusCode == tc.alt {
				want, fields = tc.alt, nil
				typ = map[int]string{403: "forbidden", 404: "not-found"}[tc.alt]
			}
			if typ == "" {
				typ = "invalid-input"
			}
			if res.StatusCode < 400 || res.StatusCode >= 500 {
				t.Errorf("status %d, want %d: %.500s", res.StatusCode, want, data)
			} else {
				wantProblem(t, want, data, res.StatusCode, typ, fields...)
			}
			if s := string(data); strings.Contains(s, "access_token") || strings.Contains(s, "refresh_token\":") {
				t.Errorf("the answer holds tokens: %.300s", s)
			}
			if res.StatusCode >= 400 {
				for _, id := range records {
					if strings.Contains(path, id) || strings.Contains(body, id) {
						continue // the problem's instance repeats the path
					}
					if strings.Contains(string(data), id) {
						t.Errorf("the refusal returns record %s: %.300s", id, data)
					}
				}
			}
			if d := before.diff(hostileSnapshotOf(t, f.db)); d != "" {
				t.Errorf("the database changed:\n%s", d)
				before = hostileSnapshotOf(t, f.db) // report each change once
			}
		})
	}
	t.Logf("%d injection payloads", len(cases))

	// The injections left every account working as before.
	f.e.login("ada@example.com", f.admin.password)
	f.e.login(f.member.Email, f.member.password)
}

// TestInjectionDuplicateKeyOperatorFirst: a member given twice, the operator
// first and a plain string last, is refused, naming the member: a reader that
// kept the first would see the operator where the server validated the string.
func TestInjectionDuplicateKeyOperatorFirst(t *testing.T) {
	f := newHostileFixture(t)
	res, data := hostileSend(t, f.e, http.MethodPost, "/customers", f.admin.token, "application/json", `{"name":{"$ne":1},"name":"Dup Key","email":"dup@example.org"}`)
	wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input", "/name")
	if n, err := f.db.Collection("customers").CountDocuments(context.Background(), bson.D{{Key: "email", Value: "dup@example.org"}}); err != nil || n != 0 {
		t.Errorf("%d customers stored (%v), want none", n, err)
	}
}

// TestProblemsSayWhatIsWrong: the detail of a refusal names the slip a client
// most likely made, where the validator's own words would not.
func TestProblemsSayWhatIsWrong(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Plain Customer")
	it := e.interaction(admin, c, gen.InteractionTypeCall)
	missing := "0123456789abcdef01234567"
	for _, tc := range []struct {
		name, method, path, contentType, body string
		typ, field, detail                    string // field: a pointer, or ?parameter; detail: in the field's detail, else the problem's
		status                                int    // 400 when 0
	}{
		{name: "an unknown customer", method: "GET", path: "/customers/" + missing, typ: "not-found", detail: "No customer has this id.", status: 404},
		{name: "the timeline of an unknown customer", method: "GET", path: "/customers/" + missing + "/interactions", typ: "not-found", detail: "No customer has this id.", status: 404},
		{name: "an unknown interaction", method: "PATCH", path: "/interactions/" + missing, contentType: "application/json", body: `{"status":"Resolved"}`,
			typ: "not-found", detail: "No interaction has this id.", status: 404},
		{name: "an unknown user", method: "DELETE", path: "/users/" + missing, typ: "not-found", detail: "No user has this id.", status: 404},
		{name: "a taken email", method: "POST", path: "/customers", contentType: "application/json", body: `{"name":"Again","email":"` + c.Email + `"}`,
			typ: "duplicate", detail: "A customer with this email already exists: GET /customers?email=… finds it.", status: 409},
		{name: "a user's id as the customer", method: "POST", path: "/interactions", contentType: "application/json", body: `{"customer_id":"` + admin.Id + `","type":"Call"}`,
			typ: "unknown-reference", field: "/customer_id", detail: "refers to no existing customer", status: 422},
		{name: "two references to nothing, the customer", method: "PUT", path: "/interactions/" + it.Id, contentType: "application/json",
			body: `{"customer_id":"` + missing + `","user_id":"` + missing + `","type":"Call","status":"Open"}`,
			typ:  "unknown-reference", field: "/customer_id", detail: "refers to no existing customer", status: 422},
		{name: "two references to nothing, the user", method: "PUT", path: "/interactions/" + it.Id, contentType: "application/json",
			body: `{"customer_id":"` + missing + `","user_id":"` + missing + `","type":"Call","status":"Open"}`,
			typ:  "unknown-reference", field: "/user_id", detail: "refers to no existing user", status: 422},
		{"a member given twice", "POST", "/customers", "application/json", `{"name":"A","email":"a@example.org","name":"B"}`,
			"invalid-input", "/name", "may be given only once", 0},
		{"a member given twice in a merge patch", "PATCH", "/customers/" + c.Id, "application/merge-patch+json", `{"notes":"a","notes":null}`,
			"invalid-input", "/notes", "may be given only once", 0},
		{"two member names that are not UTF-8", "POST", "/customers", "application/json", `{"name":"A","email":"a@example.org","x":{"\ud800":1,"\udbff":2}}`,
			"invalid-input", "/x/\ufffd", "must be UTF-8 text", 0},
		{"a member given twice at sign-in", "POST", "/users/login", "application/json", `{"email":"ada@example.com","password":"x","password":"first admin password"}`,
			"invalid-input", "/password", "may be given only once", 0},
		{"a trailing comma", "POST", "/customers", "application/json", `{"name":"A",}`,
			"malformed-body", "", "at byte 13", 0},
		{"a body cut short", "POST", "/customers", "application/json", `{"name":"A"`,
			"malformed-body", "", "ends before its value does", 0},
		{"a second value", "POST", "/customers", "application/json", `{"name":"A","email":"a@example.org"} {}`,
			"malformed-body", "", "holds more after its first value", 0},
		{"an empty merge patch", "PATCH", "/customers/" + c.Id, "application/merge-patch+json", `{}`,
			"invalid-input", "", "must name at least one field to change", 0},
		{"null for a required enum", "POST", "/customers", "application/json", `{"name":"A","email":"a@example.org","status":null}`,
			"invalid-input", "/status", "cannot be null", 0},
		{"several statuses joined by a comma", "GET", "/interactions?status=Open,InProgress", "", "",
			"invalid-input", "?status", "for several, repeat the parameter: status=…&status=…", 0},
		{"a filter given more often than it has values", "GET", "/interactions?" + strings.Repeat("type=Call&", 7), "", "",
			"invalid-input", "?type", "may be given at most 6 times", 0},
		{"an unencoded + in a query's offset", "GET", "/interactions?scheduled_from=2026-11-23T00:00:00+01:00", "", "",
			"invalid-input", "?scheduled_from", "a \"+\" in a query string means a space: send it as %2B", 0},
		{"an unencoded + in a query's email", "GET", "/customers?email=grace+test@example.com", "", "",
			"invalid-input", "?email", "a \"+\" in a query string means a space: send it as %2B", 0},
		{"several ids joined by a comma", "GET", "/interactions?user_id=" + admin.Id + "," + admin.Id, "", "",
			"invalid-input", "?user_id", "for several, repeat the parameter: user_id=…&user_id=…", 0},
		{"a lower-case t and z", "POST", "/interactions", "application/json", `{"customer_id":"` + c.Id + `","type":"Call","scheduled_at":"2026-12-01t15:00:00z"}`,
			"invalid-input", "/scheduled_at", "write \"T\" and \"Z\" in upper case", 0},
		{"a byte order mark before the JSON", "POST", "/customers", "application/json", "\ufeff" + `{"name":"A","email":"a@example.org"}`,
			"malformed-body", "", "starts with a byte order mark (U+FEFF); send it without one", 0},
		{"a byte order mark before a form", "POST", "/auth/token", "application/x-www-form-urlencoded", "\ufeffgrant_type=password&username=ada%40example.com&password=x",
			"malformed-body", "", "starts with a byte order mark (U+FEFF); send it without one", 0},
		{"a NUL in a form's password", "POST", "/auth/token", "application/x-www-form-urlencoded", "grant_type=password&username=ada%40example.com&password=a%00b",
			"invalid-input", "/password", "must be UTF-8 text without NUL characters", 0},
		{"a form's username that is not UTF-8", "POST", "/auth/token", "application/x-www-form-urlencoded", "grant_type=password&username=%FF%40example.com&password=x",
			"invalid-input", "/username", "must be UTF-8 text without NUL characters", 0},
		{"a date-time in year 10000 in UTC", "POST", "/interactions", "application/json", `{"customer_id":"` + c.Id + `","type":"Call","scheduled_at":"9999-12-31T23:00:00-05:00"}`,
			"invalid-input", "/scheduled_at", "in UTC, its year must be from 0000 to 9999", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.raw(tc.method, tc.path, admin.token, tc.contentType, tc.body)
			var fields []string
			if tc.field != "" {
				fields = []string{tc.field}
			}
			p := wantProblem(t, cmp.Or(tc.status, http.StatusBadRequest), body, res.StatusCode, tc.typ, fields...)
			detail := deref(p.Detail)
			if p.Errors != nil && tc.field != "" {
				for _, f := range *p.Errors {
					if deref(f.Pointer) == tc.field || "?"+deref(f.Parameter) == tc.field {
						detail = f.Detail
					}
				}
			} else if p.Errors != nil && tc.status == 0 && len(*p.Errors) == 1 {
				detail = (*p.Errors)[0].Detail
			}
			if !strings.Contains(detail, tc.detail) {
				t.Errorf("detail %q, want it to say %q; body: %s", detail, tc.detail, body)
			}
		})
	}

	// A body is no query string: a space in its date-time is no "+" lost on the way.
	res, body := e.raw(http.MethodPost, "/interactions", admin.token, "application/json",
		`{"customer_id":"`+c.Id+`","type":"Call","scheduled_at":"2026-01-01T10:00:00 01:00"}`)
	p := wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/scheduled_at")
	if got, want := (*p.Errors)[0].Detail, "must be an RFC 3339 date-time such as 2026-11-26T09:30:00Z"; got != want {
		t.Errorf("a body's date-time with a space: %q, want %q", got, want)
	}
}

// TestInjectionSearchIsLiteral: q is a substring, never a regular expression.
// Regex metacharacters match only customers that contain them literally.
func TestInjectionSearchIsLiteral(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	for _, c := range []struct{ name, email string }{
		{"Regex .* Corp", "regex@example.org"},
		{"Caret ^ Inc", "caret@example.org"},
		{"Paren ( Ltd", "paren@example.org"},
		{"Dollar $ne Co", "dollar@example.org"},
		{"Pipe | Partners", "pipe@example.org"},
		{`Backslash \ Works`, "backslash@example.org"},
		{"Plain Customer", "plain@example.org"},
		{"Another Plain One", "another@example.org"},
	} {
		body, err := json.Marshal(map[string]string{"name": c.name, "email": c.email})
		if err != nil {
			t.Fatal(err)
		}
		res, data := hostileSend(t, e, http.MethodPost, "/customers", admin.token, "application/json", string(body))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", c.name, res.StatusCode, data)
		}
	}
	db := rawDB(t, e)
	before := hostileSnapshotOf(t, db)

	cases := []struct {
		q    string
		want []string // names, sorted
		// mayRefuse: a value that cannot be a search text at all (NUL,
		// invalid UTF-8) may get 400 naming q instead of an empty page.
		mayRefuse bool
	}{
		{q: ".*", want: []string{"Regex .* Corp"}},
		{q: "^", want: []string{"Caret ^ Inc"}},
		{q: "(", want: []string{"Paren ( Ltd"}},
		{q: "$ne", want: []string{"Dollar $ne Co"}},
		{q: "|", want: []string{"Pipe | Partners"}},
		{q: `\`, want: []string{`Backslash \ Works`}},
		{q: "caret ^", want: []string{"Caret ^ Inc"}},
		// Every email has a dot: the literal "." finds them all.
		{q: ".", want: []string{"Another Plain One", `Backslash \ Works`, "Caret ^ Inc", "Dollar $ne Co", "Paren ( Ltd", "Pipe | Partners", "Plain Customer", "Regex .* Corp"}},
		{q: "a|b", want: nil},
		{q: ".+", want: nil},
		{q: "[", want: nil},
		{q: "(?i)plain", want: nil},
		{q: "$where", want: nil},
		{q: `{"$ne":null}`, want: nil},
		{q: "\x00", want: nil, mayRefuse: true},
		{q: "\xff", want: nil, mayRefuse: true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("q=%q", tc.q), func(t *testing.T) {
			res, data := hostileSend(t, e, http.MethodGet, "/customers?limit=200&q="+url.QueryEscape(tc.q), admin.token, "", "")
			if tc.mayRefuse && res.StatusCode == http.StatusBadRequest {
				wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input", "?q")
				return
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %.500s", res.StatusCode, data)
			}
			var page gen.CustomerList
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range page.Data {
				got = append(got, c.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("q=%q found %q, want exactly %q", tc.q, got, tc.want)
			}
		})
	}
	// The users list shares the search parameter.
	for _, tc := range []struct {
		q         string
		want      []string
		mayRefuse bool
	}{
		{q: ".*"}, {q: "^"}, {q: "("}, {q: "^ada"},
		{q: "ada", want: []string{"Ada Admin"}},
		{q: "\x00", mayRefuse: true},
		{q: "\xff", mayRefuse: true},
	} {
		t.Run(fmt.Sprintf("users q=%q", tc.q), func(t *testing.T) {
			res, data := hostileSend(t, e, http.MethodGet, "/users?q="+url.QueryEscape(tc.q), admin.token, "", "")
			if tc.mayRefuse && res.StatusCode == http.StatusBadRequest {
				wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input", "?q")
				return
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %.500s", res.StatusCode, data)
			}
			var page gen.UserList
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range page.Data {
				got = append(got, u.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("q=%q found %q, want exactly %q", tc.q, got, tc.want)
			}
		})
	}
	if d := before.diff(hostileSnapshotOf(t, db)); d != "" {
		t.Errorf("searching changed the database:\n%s", d)
	}
}

// hostileAPICSP is the policy of every API response: nothing may load, nothing may
// frame it.
const hostileAPICSP = "default-src 'none'; frame-ancestors 'none'"

// TestSecurityHeaders checks the headers of every kind of response: successes
// and errors from each layer (validator, router, body limit, handlers), the
// probes, the token responses and Swagger UI.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Grace Hopper")
	refresh := func() string {
		t.Helper()
		res, data := hostileSend(t, e, http.MethodPost, "/users/login", "", "application/json",
			fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, admin.password))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", res.StatusCode, data)
		}
		var tok gen.TokenResponse
		if err := json.Unmarshal(data, &tok); err != nil {
			t.Fatal(err)
		}
		e.check.secret(tok.RefreshToken)
		return tok.RefreshToken
	}

	type kind int
	const (
		apiResponse kind = iota
		docsPage
	)
	cases := []struct {
		name, method, path string
		token              string
		ct, body           string
		status             int
		kind               kind
		noStore            bool // authenticated, or a token response
	}{
		{name: "list", method: "GET", path: "/customers", token: admin.token, status: 200, noStore: true},
		{name: "read", method: "GET", path: "/customers/" + c.Id, token: admin.token, status: 200, noStore: true},
		{name: "current user", method: "GET", path: "/users/me", token: admin.token, status: 200, noStore: true},
		{name: "create", method: "POST", path: "/customers", token: admin.token, ct: "application/json", body: `{"name":"New","email":"new@example.org"}`, status: 201, noStore: true},
		{name: "invalid input", method: "POST", path: "/customers", token: admin.token, ct: "application/json", body: `{}`, status: 400, noStore: true},
		{name: "malformed body", method: "POST", path: "/customers", token: admin.token, ct: "application/json", body: `{"name":`, status: 400, noStore: true},
		{name: "unknown id", method: "GET", path: "/customers/0123456789abcdef01234567", token: admin.token, status: 404, noStore: true},
		{name: "unknown path", method: "GET", path: "/nothing/here", status: 404},
		{name: "unknown path with token", method: "GET", path: "/nothing/here", token: admin.token, status: 404, noStore: true},
		{name: "method not allowed", method: "DELETE", path: "/customers", token: admin.token, status: 405, noStore: true},
		{name: "no token", method: "GET", path: "/customers", status: 401},
		{name: "bad token", method: "GET", path: "/customers", token: "not.a.token", status: 401, noStore: true},
		{name: "unsupported media type", method: "POST", path: "/customers", token: admin.token, ct: "text/plain", body: "x", status: 415, noStore: true},
		{name: "too large", method: "POST", path: "/customers", token: admin.token, ct: "application/json", body: `{"notes":"` + strings.Repeat("x", 1<<20) + `"}`, status: 413, noStore: true},
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "login", method: "POST", path: "/users/login", ct: "application/json", body: fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, admin.password), status: 200, noStore: true},
		{name: "token form", method: "POST", path: "/auth/token", ct: "application/x-www-form-urlencoded", body: "grant_type=password&username=ada%40example.com&password=" + url.QueryEscape(admin.password), status: 200, noStore: true},
		{name: "login failure", method: "POST", path: "/users/login", ct: "application/json", body: `{"email":"ada@example.com","password":"wrong password"}`, status: 401},
		{name: "refresh", method: "POST", path: "/auth/refresh", ct: "application/json", body: fmt.Sprintf(`{"refresh_token":%q}`, refresh()), status: 200, noStore: true},
		{name: "logout", method: "POST", path: "/auth/logout", ct: "application/json", body: fmt.Sprintf(`{"refresh_token":%q}`, refresh()), status: 204},
		{name: "spec", method: "GET", path: "/openapi.json", status: 200},
		{name: "docs", method: "GET", path: "/docs", status: 200, kind: docsPage},
		{name: "docs slash", method: "GET", path: "/docs/", status: 200, kind: docsPage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, data := hostileSend(t, e, tc.method, tc.path, tc.token, tc.ct, tc.body)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %.300s", res.StatusCode, tc.status, data)
			}
			h := res.Header
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			csp := h.Get("Content-Security-Policy")
			switch tc.kind {
			case apiResponse:
				if csp != hostileAPICSP {
					t.Errorf("Content-Security-Policy %q, want %q", csp, hostileAPICSP)
				}
			case docsPage:
				for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("Content-Security-Policy of /docs %q lacks %q", csp, want)
					}
				}
				if strings.Contains(csp, "*") || strings.Contains(csp, "http:") || strings.Contains(csp, "https:") {
					t.Errorf("Content-Security-Policy of /docs %q allows other origins", csp)
				}
			}
			if tc.noStore && !slices.Contains(hostileHeaderItems(h.Values("Cache-Control")), "no-store") {
				t.Errorf("Cache-Control %q, want no-store", h.Values("Cache-Control"))
			}
		})
	}
}

// hostileHeaderItems splits comma-separated header values into lower-case items.
func hostileHeaderItems(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// hostileCORSHeaders are the response headers by which a server lets another origin
// in; none may appear for an origin that is not allowed.
var hostileCORSHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"}

func hostileWantNoCORS(t *testing.T, what string, res *http.Response) {
	t.Helper()
	for _, name := range hostileCORSHeaders {
		if v := res.Header.Values(name); len(v) > 0 {
			t.Errorf("%s: %s %q lets the origin in", what, name, v)
		}
	}
}

// hostilePreflight sends a CORS preflight from origin for method on path.
func hostilePreflight(t *testing.T, e *env, path, origin, method, headers string) (*http.Response, []byte) {
	t.Helper()
	h := []string{"Origin", origin, "Access-Control-Request-Method", method}
	if headers != "" {
		h = append(h, "Access-Control-Request-Headers", headers)
	}
	return hostileSend(t, e, http.MethodOptions, path, "", "", "", h...)
}

// TestCORSOffByDefault: without an allow-list no origin is let in, not even
// the one a deployment would typically allow.
func TestCORSOffByDefault(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Grace Hopper")
	for _, origin := range []string{"https://evil.example", "https://crm.example.com", "null"} {
		res, _ := hostileSend(t, e, http.MethodGet, "/customers", admin.token, "", "", "Origin", origin)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /customers from %s: %d", origin, res.StatusCode)
		}
		hostileWantNoCORS(t, "GET /customers from "+origin, res)
		res, _ = hostileSend(t, e, http.MethodGet, "/healthz", "", "", "", "Origin", origin)
		hostileWantNoCORS(t, "GET /healthz from "+origin, res)
		res, _ = hostileSend(t, e, http.MethodPost, "/users/login", "", "application/json",
			`{"email":"ada@example.com","password":"wrong password"}`, "Origin", origin)
		hostileWantNoCORS(t, "POST /users/login from "+origin, res)
		res, _ = hostilePreflight(t, e, "/customers/"+c.Id, origin, http.MethodPatch, "authorization,content-type,if-match")
		hostileWantNoCORS(t, "preflight PATCH from "+origin, res)
		res, _ = hostilePreflight(t, e, "/customers", origin, http.MethodPost, "authorization,content-type")
		hostileWantNoCORS(t, "preflight POST from "+origin, res)
	}
}

// TestCORSAllowList: an allowed origin is echoed (never "*") on requests and
// preflights, with the headers the API reads and exposes; any other origin,
// however similar, is refused.
func TestCORSAllowList(t *testing.T) {
	const allowed = "https://crm.example.com"
	e := newEnv(t, withCORS(allowed))
	admin := e.bootstrap()
	c := e.customer(admin, "Grace Hopper")

	t.Run("allowed origin", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, token string
			status                    int
		}{
			{"list", http.MethodGet, "/customers", admin.token, http.StatusOK},
			{"read", http.MethodGet, "/customers/" + c.Id, admin.token, http.StatusOK},
			// A browser client must be able to read a 401 to know to refresh.
			{"no token", http.MethodGet, "/customers", "", http.StatusUnauthorized},
		} {
			res, data := hostileSend(t, e, tc.method, tc.path, tc.token, "", "", "Origin", allowed)
			if res.StatusCode != tc.status {
				t.Errorf("%s: status %d, want %d: %.300s", tc.name, res.StatusCode, tc.status, data)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != allowed {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.name, got, allowed)
			}
			if got := res.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("%s: Access-Control-Allow-Credentials %q: bearer tokens need no credentials mode", tc.name, got)
			}
			if !slices.Contains(hostileHeaderItems(res.Header.Values("Vary")), "origin") {
				t.Errorf("%s: Vary %q lacks Origin: a cache could serve one origin's answer to another", tc.name, res.Header.Values("Vary"))
			}
			exposed := hostileHeaderItems(res.Header.Values("Access-Control-Expose-Headers"))
			for _, h := range []string{"etag", "location", "link"} {
				if !slices.Contains(exposed, h) {
					t.Errorf("%s: Access-Control-Expose-Headers %q lacks %s", tc.name, exposed, h)
				}
			}
		}
	})

	t.Run("allowed preflight", func(t *testing.T) {
		for _, tc := range []struct{ path, method string }{
			{"/customers/" + c.Id, http.MethodPatch},
			{"/customers/" + c.Id, http.MethodPut},
			{"/customers/" + c.Id, http.MethodDelete},
			{"/customers", http.MethodPost},
		} {
			what := "preflight " + tc.method + " " + tc.path
			res, data := hostilePreflight(t, e, tc.path, allowed, tc.method, "Authorization, Content-Type, If-Match, Idempotency-Key")
			if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d: %.300s", what, res.StatusCode, data)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != allowed {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", what, got, allowed)
			}
			methods := hostileHeaderItems(res.Header.Values("Access-Control-Allow-Methods"))
			if !slices.Contains(methods, strings.ToLower(tc.method)) {
				t.Errorf("%s: Access-Control-Allow-Methods %q", what, methods)
			}
			headers := hostileHeaderItems(res.Header.Values("Access-Control-Allow-Headers"))
			for _, h := range []string{"authorization", "content-type", "if-match", "idempotency-key"} {
				if !slices.Contains(headers, h) {
					t.Errorf("%s: Access-Control-Allow-Headers %q lacks %s", what, headers, h)
				}
			}
		}
	})

	t.Run("other origins", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "https://crm.example.com.evil.example", "https://evil-crm.example.com",
			"http://crm.example.com", "https://crm.example.com:8443", "null"} {
			res, _ := hostileSend(t, e, http.MethodGet, "/customers", admin.token, "", "", "Origin", origin)
			hostileWantNoCORS(t, "GET from "+origin, res)
			res, _ = hostileSend(t, e, http.MethodGet, "/customers", "", "", "", "Origin", origin)
			hostileWantNoCORS(t, "401 to "+origin, res)
			res, _ = hostilePreflight(t, e, "/customers/"+c.Id, origin, http.MethodPatch, "Authorization, Content-Type, If-Match, Idempotency-Key")
			hostileWantNoCORS(t, "preflight from "+origin, res)
		}
	})
}

// TestNoLeakInErrorResponses provokes an error of every kind — from the
// router, the body limit, the validator, the handlers, the store's unique
// index and reference checks, the throttle — and checks each is a problem
// document that names none of the machinery (hostileSend checks the words).
func TestNoLeakInErrorResponses(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	member := e.addUser(admin, "Bob Member", gen.Member)
	c := e.customer(admin, "Grace Hopper")
	e.customer(member, "Alan Turing")
	e.interaction(admin, c, gen.InteractionTypeCall)
	missing := "0123456789abcdef01234567"

	// A genuine cursor, then one for another sort, then a tampered one.
	res, data := hostileSend(t, e, http.MethodGet, "/customers?limit=1", admin.token, "", "")
	var page gen.CustomerList
	if err := json.Unmarshal(data, &page); err != nil || res.StatusCode != http.StatusOK || page.NextCursor.IsNull() {
		t.Fatalf("first page: %d %s", res.StatusCode, data)
	}
	cursor, _ := page.NextCursor.Get()
	// A first create under an Idempotency-Key, reused below with another body.
	if res, data := hostileSend(t, e, http.MethodPost, "/customers", admin.token, "application/json", `{"name":"Keyed","email":"keyed@example.org"}`, "Idempotency-Key", "key-1"); res.StatusCode != http.StatusCreated {
		t.Fatalf("keyed create: %d %s", res.StatusCode, data)
	}

	cases := []struct {
		name, method, path, token, ct, body string
		headers                             []string
		status                              int
		typ                                 string
	}{
		{"duplicate customer email", "POST", "/customers", admin.token, "application/json", `{"name":"G","email":"GRACE.HOPPER@example.org"}`, nil, 409, "duplicate"},
		{"duplicate user email", "POST", "/users", admin.token, "application/json", `{"name":"B","email":"bob.member@example.com","password":"long enough pw"}`, nil, 409, "duplicate"},
		{"email changed onto a taken one", "PATCH", "/customers/" + c.Id, admin.token, "application/json", `{"email":"alan.turing@example.org"}`, nil, 409, "duplicate"},
		{"delete a referenced customer", "DELETE", "/customers/" + c.Id, admin.token, "", "", nil, 409, "conflict"},
		{"delete a user who owns records", "DELETE", "/users/" + member.Id, admin.token, "", "", nil, 409, "conflict"},
		{"demote the last admin", "PATCH", "/users/" + admin.Id, admin.token, "application/json", `{"role":"member"}`, nil, 409, "conflict"},
		{"stale If-Match", "PATCH", "/customers/" + c.Id, admin.token, "application/json", `{"notes":"n"}`, []string{"If-Match", `"999"`}, 412, "precondition-failed"},
		{"unknown customer reference", "POST", "/interactions", admin.token, "application/json", `{"customer_id":"` + missing + `","type":"Call"}`, nil, 422, "unknown-reference"},
		{"unknown owner reference", "PATCH", "/customers/" + c.Id, admin.token, "application/json", `{"owner_id":"` + missing + `"}`, nil, 422, "unknown-reference"},
		{"idempotency key reused", "POST", "/customers", admin.token, "application/json", `{"name":"Other","email":"other@example.org"}`, []string{"Idempotency-Key", "key-1"}, 422, "idempotency-key-reuse"},
		{"unknown customer", "GET", "/customers/" + missing, admin.token, "", "", nil, 404, "not-found"},
		{"unknown user", "DELETE", "/users/" + missing, admin.token, "", "", nil, 404, "not-found"},
		{"unknown interaction", "PATCH", "/interactions/" + missing, admin.token, "application/json", `{"status":"Resolved"}`, nil, 404, "not-found"},
		{"unknown path", "GET", "/admin/../../etc/passwd", "", "", "", nil, 404, "not-found"},
		{"unknown docs asset", "GET", "/docs/no-such-file.js", "", "", "", nil, 404, "not-found"},
		{"the OAuth 2.0 redirect page, which no flow of the spec uses", "GET", "/docs/oauth2-redirect.html", "", "", "", nil, 404, "not-found"},
		{"method not allowed", "PUT", "/customers", admin.token, "application/json", `{}`, nil, 405, "method-not-allowed"},
		{"unsupported media type", "POST", "/customers", admin.token, "application/xml", `<customer/>`, nil, 415, "unsupported-media-type"},
		{"too large", "POST", "/users/login", "", "application/json", `{"email":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, "payload-too-large"},
		{"malformed JSON", "POST", "/customers", admin.token, "application/json", `{"name":"A",}`, nil, 400, "malformed-body"},
		{"tampered cursor", "GET", "/customers?cursor=" + url.QueryEscape(tamper(cursor)), admin.token, "", "", nil, 400, "invalid-input"},
		{"cursor for another sort", "GET", "/customers?sort=name&cursor=" + url.QueryEscape(cursor), admin.token, "", "", nil, 400, "invalid-input"},
		{"cursor for another list", "GET", "/users?cursor=" + url.QueryEscape(cursor), admin.token, "", "", nil, 400, "invalid-input"},
		{"bad token", "GET", "/customers", "eyJhbGciOiJub25lIn0.e30.", "", "", nil, 401, "unauthorized"},
		{"member edits another's customer", "PATCH", "/customers/" + c.Id, member.token, "application/json", `{"notes":"mine now"}`, nil, 403, "forbidden"},
		{"member deletes a user", "DELETE", "/users/" + admin.Id, member.token, "", "", nil, 403, "forbidden"},
		{"wrong password", "POST", "/users/login", "", "application/json", `{"email":"ada@example.com","password":"wrong password"}`, nil, 401, "invalid-credentials"},
		{"unknown refresh token", "POST", "/auth/refresh", "", "application/json", `{"refresh_token":"no-such-token"}`, nil, 401, "invalid-credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, data := hostileSend(t, e, tc.method, tc.path, tc.token, tc.ct, tc.body, tc.headers...)
			wantProblem(t, tc.status, data, res.StatusCode, tc.typ)
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
		})
	}

	t.Run("throttled", func(t *testing.T) {
		var res *http.Response
		var data []byte
		for range 10 {
			res, data = hostileSend(t, e, http.MethodPost, "/users/login", "", "application/json", `{"email":"nobody@example.com","password":"guess guess"}`)
			if res.StatusCode == http.StatusTooManyRequests {
				break
			}
		}
		wantProblem(t, http.StatusTooManyRequests, data, res.StatusCode, "too-many-requests")
	})
}

// tamper changes one character in the middle of a cursor, where every bit of a
// base64 character counts (the last character of a signature may carry unused
// bits, so changing it need not change the bytes).
func tamper(cursor string) string {
	i := len(cursor) / 3
	c := byte('A')
	if cursor[i] == 'A' {
		c = 'B'
	}
	return cursor[:i] + string(c) + cursor[i+1:]
}
