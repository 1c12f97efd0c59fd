package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/opencrm/crm/gen"
)

// Authorization as a matrix (issue 4; OWASP API1, broken object level, and
// API5, broken function level authorization): every operation that needs a
// token × every kind of caller, each cell with the exact status that API.md's
// "Who may do what" gives it. Every cell starts from the same database: the
// collections are read directly after each request, a refused request (and
// every read) must have left them exactly as they were, and whatever a
// successful write changed is put back before the next cell. Mass assignment
// (OWASP API3) has its own table.

// The callers of the matrix.
const (
	authzAdmin = "admin"
	// authzOwner owns the record acted on: the customer (owner_id), the
	// interaction (user_id), or for the users operations the profile itself.
	authzOwner = "owner member"
	// authzOther is a member acting on a record that is not theirs.
	authzOther = "other member"
	// authzInactive signed in and was then deactivated by an admin. Their token
	// is still validly signed and unexpired, and they act on their own records,
	// so that only the deactivation stands in the way.
	authzInactive = "deactivated user"
	// authzDeleted signed in and was then deleted by an admin.
	authzDeleted = "deleted user"
	authzNoToken = "no token"
)

var authzCallers = []string{authzAdmin, authzOwner, authzOther, authzInactive, authzDeleted, authzNoToken}

// authzAllow gives a row's statuses for admin, owner member and other member;
// the deactivated user, the deleted user and a request without a token get 401
// from every operation that needs a token.
func authzAllow(admin, owner, other int) map[string]int {
	return map[string]int{
		authzAdmin: admin, authzOwner: owner, authzOther: other,
		authzInactive: http.StatusUnauthorized, authzDeleted: http.StatusUnauthorized, authzNoToken: http.StatusUnauthorized,
	}
}

// authzObj is a JSON request body.
type authzObj = map[string]any

// authzWith returns a copy of base with the members of extra added or replaced.
func authzWith(base, extra authzObj) authzObj {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
}

// authzWorld is the cast of one test server.
type authzWorld struct {
	e     *env
	db    *mongo.Database
	admin user
	owner user // owns customer and interaction
	other user
	// subject is the member whose profile the users operations act on; they
	// own nothing, so that an admin may delete them.
	subject     user
	customer    gen.Customer    // owned by owner
	interaction gen.Interaction // of owner with customer
	paused      user            // deactivated by the admin after signing in
	// What the deactivated user owned before the deactivation.
	pausedCustomer    gen.Customer
	pausedInteraction gen.Interaction
	gone              user // deleted by the admin after signing in
	seq               int
	// snap is the database as call last saw it, or nil when it may have
	// changed since.
	snap authzSnapshot
}

// authzTarget is who acts in one cell, and on what.
type authzTarget struct {
	caller      user // token "" for no token
	subject     user
	customer    gen.Customer
	interaction gen.Interaction
}

// newAuthzWorld starts a server with the whole cast.
func newAuthzWorld(t *testing.T) *authzWorld {
	t.Helper()
	e := newEnv(t)
	w := &authzWorld{e: e, db: rawDB(t, e)}
	w.admin = e.bootstrap()
	w.owner = e.addUser(w.admin, "Olivia Owner", gen.Member)
	w.other = e.addUser(w.admin, "Oscar Other", gen.Member)
	w.subject = e.addUser(w.admin, "Sam Subject", gen.Member)
	w.customer = e.customer(w.owner, "Grace Hopper")
	w.interaction = e.interaction(w.owner, w.customer, gen.InteractionTypeMeeting)

	// Deactivated after signing in, and after the server has seen (and cached)
	// the token at work.
	w.paused = e.addUser(w.admin, "Dana Deactivated", gen.Member)
	w.pausedCustomer = e.customer(w.paused, "Alan Turing")
	w.pausedInteraction = e.interaction(w.paused, w.pausedCustomer, gen.InteractionTypeNote)
	w.mustStatus(t, w.paused.token, http.MethodGet, "/users/me", nil, http.StatusOK)
	w.mustStatus(t, w.admin.token, http.MethodPatch, "/users/"+w.paused.Id, authzObj{"status": "inactive"}, http.StatusOK)
	w.paused.Status = gen.UserStatusInactive

	w.gone = e.addUser(w.admin, "Dan Deleted", gen.Member)
	w.mustStatus(t, w.gone.token, http.MethodGet, "/users/me", nil, http.StatusOK)
	w.mustStatus(t, w.admin.token, http.MethodDelete, "/users/"+w.gone.Id, nil, http.StatusNoContent)

	// The refused tokens are still well-formed, correctly signed and unexpired:
	// only what became of their users makes them worthless.
	for _, u := range []user{w.paused, w.gone} {
		if _, err := e.tokens.Check(u.token); err != nil {
			t.Fatalf("the token of %s does not verify by itself: %v", u.Name, err)
		}
	}
	return w
}

// next returns a number not used before in this world, for unique values.
func (w *authzWorld) next() int {
	w.seq++
	return w.seq
}

// email returns an email address not used before.
func (w *authzWorld) email(prefix string) string {
	return fmt.Sprintf("%s.%d@example.com", prefix, w.next())
}

// password returns a new password, registered as a secret that no response
// may contain.
func (w *authzWorld) password() string {
	p := fmt.Sprintf("new password number %d", w.next())
	w.e.check.secret(p)
	return p
}

// callerID is the caller's id, or another member's for a request without a
// token (whose body must still be valid, so that only the token decides).
func (w *authzWorld) callerID(tg authzTarget) string {
	if tg.caller.Id != "" {
		return tg.caller.Id
	}
	return w.other.Id
}

// send sends one request as token; body is nil, a string of JSON, or a value
// to encode as JSON.
func (w *authzWorld) send(t *testing.T, token, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	e := *w.e
	e.t = t
	var payload, contentType string
	switch b := body.(type) {
	case nil:
	case string:
		payload = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		payload = string(data)
	}
	if payload != "" {
		contentType = "application/json"
		if method == http.MethodPatch {
			contentType = "application/merge-patch+json"
		}
	}
	return e.raw(method, path, token, contentType, payload)
}

// mustStatus sends a request that sets the scene, and stops the test unless it
// is answered with want.
func (w *authzWorld) mustStatus(t *testing.T, token, method, path string, body any, want int) []byte {
	t.Helper()
	w.snap = nil
	res, data := w.send(t, token, method, path, body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d; body: %s", method, path, res.StatusCode, want, data)
	}
	return data
}

// checkAnswer checks the status of a response and, for a refusal, its problem
// document. It reports whether the status was the one wanted.
func checkAnswer(t *testing.T, method, path string, res *http.Response, data []byte, want int) bool {
	t.Helper()
	if res.StatusCode != want {
		t.Errorf("%s %s: status %d, want %d; body: %s", method, path, res.StatusCode, want, data)
		return false
	}
	switch want {
	case http.StatusUnauthorized:
		wantProblem(t, want, data, want, "unauthorized")
		if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 with WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
		}
	case http.StatusForbidden:
		wantProblem(t, want, data, want, "forbidden")
	case http.StatusConflict:
		wantProblem(t, want, data, want, "conflict")
	}
	return true
}

// call sends one request and checks its status. A request answered with an
// error, and every GET, must leave the database exactly as it was. Unlike the
// matrix, call keeps what a successful request changed.
func (w *authzWorld) call(t *testing.T, token, method, path string, body any, want int) []byte {
	t.Helper()
	before := w.snap
	if before == nil {
		before = authzSnapshotOf(t, w.db)
	}
	res, data := w.send(t, token, method, path, body)
	after := authzSnapshotOf(t, w.db)
	w.snap = after
	checkAnswer(t, method, path, res, data, want)
	if res.StatusCode >= 400 || method == http.MethodGet {
		if d := before.diff(after); len(d) > 0 {
			t.Errorf("%s %s answered %d but changed the database:\n%s", method, path, res.StatusCode, strings.Join(d, "\n"))
		}
	}
	return data
}

// authzOp is one operation of the matrix, with the request it sends.
type authzOp struct {
	name   string
	kind   string // users, customers or interactions
	method string
	path   func(tg authzTarget) string
	body   func(w *authzWorld, tg authzTarget) authzObj // nil: no body
	want   map[string]int                               // status by caller
	// prepare, if set, adds to the database before the request.
	prepare func(t *testing.T, w *authzWorld, tg authzTarget)
	// then, if set, checks the body of a successful response.
	then func(t *testing.T, w *authzWorld, tg authzTarget, body []byte)
	// why, if set, is the rule that a cell breaks when its status is wrong.
	why string
}

// target returns who acts in the cell of op for caller, and on what.
func (w *authzWorld) target(op authzOp, caller string) authzTarget {
	tg := authzTarget{subject: w.subject, customer: w.customer, interaction: w.interaction}
	switch caller {
	case authzAdmin:
		tg.caller = w.admin
	case authzOwner:
		tg.caller = w.owner
		if op.kind == "users" {
			tg.caller = w.subject
		}
	case authzOther:
		tg.caller = w.other
	case authzInactive:
		tg.caller, tg.subject, tg.customer, tg.interaction = w.paused, w.paused, w.pausedCustomer, w.pausedInteraction
	case authzDeleted:
		tg.caller = w.gone
	case authzNoToken:
		tg.caller = user{}
	}
	return tg
}

// cell runs the cell of op for caller on the database base, and puts base
// back afterwards.
func (w *authzWorld) cell(t *testing.T, op authzOp, caller string, base authzSnapshot) {
	want := op.want[caller]
	tg := w.target(op, caller)
	before := base
	if op.prepare != nil {
		op.prepare(t, w, tg)
		before = authzSnapshotOf(t, w.db)
	}
	var body any
	if op.body != nil {
		body = op.body(w, tg)
	}
	path := op.path(tg)
	res, data := w.send(t, tg.caller.token, op.method, path, body)
	after := authzSnapshotOf(t, w.db)

	if !checkAnswer(t, op.method, path, res, data, want) {
		if op.why != "" {
			t.Log(op.why)
		}
	} else if want < 300 && op.then != nil {
		op.then(t, w, tg, data)
	}
	changed := before.diff(after)
	switch {
	case res.StatusCode >= 400 || op.method == http.MethodGet:
		if len(changed) > 0 {
			t.Errorf("%s %s as %s answered %d but changed the database:\n%s", op.method, path, caller, res.StatusCode, strings.Join(changed, "\n"))
		}
	case len(changed) == 0:
		t.Errorf("%s %s as %s answered %d but changed nothing", op.method, path, caller, res.StatusCode)
	}
	if len(changed) > 0 || op.prepare != nil {
		base.restore(t, w.db, after)
	}
}

// authzRunMatrix runs every op as every caller, and returns the number of cells.
func authzRunMatrix(t *testing.T, w *authzWorld, base authzSnapshot, ops []authzOp) int {
	cells := 0
	for _, op := range ops {
		for _, caller := range authzCallers {
			if _, ok := op.want[caller]; !ok {
				t.Fatalf("%s: no status for %s", op.name, caller)
			}
			cells++
			t.Run(op.name+" as "+caller, func(t *testing.T) { w.cell(t, op, caller, base) })
		}
	}
	return cells
}

func authzFixed(path string) func(authzTarget) string {
	return func(authzTarget) string { return path }
}

func authzUserPath(tg authzTarget) string        { return "/users/" + tg.subject.Id }
func authzCustomerPath(tg authzTarget) string    { return "/customers/" + tg.customer.Id }
func authzInteractionPath(tg authzTarget) string { return "/interactions/" + tg.interaction.Id }

// authzUserReplacement is a PUT body that keeps the subject's email, role and
// status, and changes name and company.
func authzUserReplacement(tg authzTarget) authzObj {
	return authzObj{"name": "Replaced Name", "email": tg.subject.Email, "company": "Replaced Ltd",
		"role": string(tg.subject.Role), "status": string(tg.subject.Status)}
}

func authzCustomerReplacement(tg authzTarget) authzObj {
	return authzObj{"name": "Replaced Customer", "email": tg.customer.Email, "status": "active", "notes": "replaced"}
}

func authzInteractionReplacement(tg authzTarget) authzObj {
	return authzObj{"user_id": tg.interaction.UserId, "customer_id": tg.interaction.CustomerId,
		"type": "Meeting", "status": "InProgress", "description": "replaced"}
}

func authzUserOps() []authzOp {
	const ok, created, gone, bad, no = http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden
	newUser := func(w *authzWorld, _ authzTarget) authzObj {
		return authzObj{"name": "New User", "email": w.email("new.user"), "password": w.password()}
	}
	put := func(extra func(w *authzWorld, tg authzTarget) authzObj) func(*authzWorld, authzTarget) authzObj {
		return func(w *authzWorld, tg authzTarget) authzObj { return authzWith(authzUserReplacement(tg), extra(w, tg)) }
	}
	fields := func(b authzObj) func(*authzWorld, authzTarget) authzObj {
		return func(*authzWorld, authzTarget) authzObj { return b }
	}
	return []authzOp{
		{name: "POST /users", kind: "users", method: http.MethodPost, path: authzFixed("/users"), body: newUser,
			want: authzAllow(created, no, no)},
		{name: "POST /users role=admin", kind: "users", method: http.MethodPost, path: authzFixed("/users"),
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(newUser(w, tg), authzObj{"role": "admin"})
			},
			want: authzAllow(created, no, no),
			then: func(t *testing.T, _ *authzWorld, _ authzTarget, body []byte) {
				if !strings.Contains(string(body), `"role":"admin"`) {
					t.Errorf("an admin asked for an admin and got %s", body)
				}
			}},
		{name: "GET /users", kind: "users", method: http.MethodGet, path: authzFixed("/users"), want: authzAllow(ok, ok, ok)},
		{name: "GET /users/me", kind: "users", method: http.MethodGet, path: authzFixed("/users/me"), want: authzAllow(ok, ok, ok),
			then: func(t *testing.T, _ *authzWorld, tg authzTarget, body []byte) {
				if !strings.Contains(string(body), `"id":"`+tg.caller.Id+`"`) {
					t.Errorf("/users/me of %s is %s", tg.caller.Id, body)
				}
			}},
		{name: "GET /users/{id}", kind: "users", method: http.MethodGet, path: authzUserPath, want: authzAllow(ok, ok, ok)},
		// Everyone reads every record, and so may learn which are gone.
		{name: "GET /deletions", kind: "users", method: http.MethodGet, path: authzFixed("/deletions"), want: authzAllow(ok, ok, ok)},

		{name: "PUT /users/{id} name and company", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(fields(nil)), want: authzAllow(ok, ok, no)},
		{name: "PUT /users/{id} role=admin", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(fields(authzObj{"role": "admin"})), want: authzAllow(ok, no, no)},
		{name: "PUT /users/{id} status=inactive", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(fields(authzObj{"status": "inactive"})), want: authzAllow(ok, no, no)},
		{name: "PUT /users/{id} new email", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"email": w.email("renamed")} }),
			want: authzAllow(ok, no, no)},
		{name: "PUT /users/{id} password without current_password", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"password": w.password()} }),
			want: authzAllow(ok, bad, no)},
		{name: "PUT /users/{id} password with current_password", kind: "users", method: http.MethodPut, path: authzUserPath,
			body: put(func(w *authzWorld, tg authzTarget) authzObj {
				return authzObj{"password": w.password(), "current_password": tg.subject.password}
			}), want: authzAllow(ok, ok, no)},

		{name: "PATCH /users/{id} name and company", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: fields(authzObj{"name": "Patched Name", "company": "Patched Ltd"}), want: authzAllow(ok, ok, no)},
		{name: "PATCH /users/{id} role=admin", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: fields(authzObj{"role": "admin"}), want: authzAllow(ok, no, no)},
		{name: "PATCH /users/{id} status=inactive", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: fields(authzObj{"status": "inactive"}), want: authzAllow(ok, no, no)},
		{name: "PATCH /users/{id} email", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"email": w.email("patched")} },
			want: authzAllow(ok, no, no)},
		{name: "PATCH /users/{id} password with current_password", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzObj{"password": w.password(), "current_password": tg.subject.password}
			}, want: authzAllow(ok, ok, no)},
		{name: "PATCH /users/{id} password without current_password", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"password": w.password()} },
			want: authzAllow(ok, bad, no)},
		{name: "PATCH /users/{id} password with a wrong current_password", kind: "users", method: http.MethodPatch, path: authzUserPath,
			body: func(w *authzWorld, _ authzTarget) authzObj {
				return authzObj{"password": w.password(), "current_password": "not the current password"}
			}, want: authzAllow(ok, bad, no)},

		{name: "DELETE /users/{id}", kind: "users", method: http.MethodDelete, path: authzUserPath,
			want: authzAllow(gone, no, no)},
	}
}

func authzCustomerOps() []authzOp {
	const ok, created, gone, conflict, no = http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusConflict, http.StatusForbidden
	newCustomer := func(w *authzWorld, _ authzTarget) authzObj {
		return authzObj{"name": "New Customer", "email": w.email("new.customer")}
	}
	ownedBy := func(who func(w *authzWorld, tg authzTarget) string) func(*testing.T, *authzWorld, authzTarget, []byte) {
		return func(t *testing.T, w *authzWorld, tg authzTarget, body []byte) {
			var c gen.Customer
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatal(err)
			}
			if want := who(w, tg); deref(c.OwnerId) != want {
				t.Errorf("owner_id %s, want %s", deref(c.OwnerId), want)
			}
		}
	}
	caller := func(_ *authzWorld, tg authzTarget) string { return tg.caller.Id }
	owner := func(w *authzWorld, _ authzTarget) string { return w.owner.Id }
	other := func(w *authzWorld, _ authzTarget) string { return w.other.Id }
	cascade := func(tg authzTarget) string { return authzCustomerPath(tg) + "?cascade=true" }
	return []authzOp{
		{name: "POST /customers", kind: "customers", method: http.MethodPost, path: authzFixed("/customers"), body: newCustomer,
			want: authzAllow(created, created, created), then: ownedBy(caller)},
		{name: "POST /customers owner_id=other member", kind: "customers", method: http.MethodPost, path: authzFixed("/customers"),
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(newCustomer(w, tg), authzObj{"owner_id": w.other.Id})
			}, want: authzAllow(created, no, created), then: ownedBy(other)},
		{name: "GET /customers", kind: "customers", method: http.MethodGet, path: authzFixed("/customers"), want: authzAllow(ok, ok, ok)},
		{name: "GET /customers/{id}", kind: "customers", method: http.MethodGet, path: authzCustomerPath, want: authzAllow(ok, ok, ok)},
		{name: "GET /customers/{id}/interactions", kind: "customers", method: http.MethodGet,
			path: func(tg authzTarget) string { return authzCustomerPath(tg) + "/interactions" }, want: authzAllow(ok, ok, ok)},

		{name: "PUT /customers/{id}", kind: "customers", method: http.MethodPut, path: authzCustomerPath,
			body: func(_ *authzWorld, tg authzTarget) authzObj { return authzCustomerReplacement(tg) },
			want: authzAllow(ok, ok, no), then: ownedBy(owner)},
		{name: "PUT /customers/{id} owner_id=other member", kind: "customers", method: http.MethodPut, path: authzCustomerPath,
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(authzCustomerReplacement(tg), authzObj{"owner_id": w.other.Id})
			}, want: authzAllow(ok, no, no), then: ownedBy(other)},
		{name: "PATCH /customers/{id}", kind: "customers", method: http.MethodPatch, path: authzCustomerPath,
			body: func(*authzWorld, authzTarget) authzObj {
				return authzObj{"notes": "patched", "tags": []string{"patched"}}
			},
			want: authzAllow(ok, ok, no)},
		{name: "PATCH /customers/{id} owner_id=other member", kind: "customers", method: http.MethodPatch, path: authzCustomerPath,
			body: func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"owner_id": w.other.Id} },
			want: authzAllow(ok, no, no), then: ownedBy(other)},
		// A member claiming someone else's customer for themselves.
		{name: "PATCH /customers/{id} owner_id=caller", kind: "customers", method: http.MethodPatch, path: authzCustomerPath,
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzObj{"owner_id": w.callerID(tg), "notes": "mine now"}
			}, want: authzAllow(ok, ok, no), then: ownedBy(caller)},

		{name: "DELETE /customers/{id}?cascade=true", kind: "customers", method: http.MethodDelete, path: cascade,
			want: authzAllow(gone, gone, no)},
		{name: "DELETE /customers/{id} that has interactions", kind: "customers", method: http.MethodDelete, path: authzCustomerPath,
			want: authzAllow(conflict, conflict, no)},
		// Members delete only their own interactions: a cascade from a customer
		// they own must not reach another member's interactions.
		{name: "DELETE /customers/{id}?cascade=true with another member's interaction", kind: "customers", method: http.MethodDelete,
			path: cascade, want: authzAllow(gone, no, no),
			why: "API.md: members update/delete only their own interactions; a cascade from a customer " +
				"that a member owns must not delete another member's interactions (only an admin's may)",
			prepare: func(t *testing.T, w *authzWorld, tg authzTarget) {
				w.mustStatus(t, w.other.token, http.MethodPost, "/interactions",
					authzObj{"customer_id": tg.customer.Id, "type": "Note", "description": "Oscar's note"}, http.StatusCreated)
			}},
	}
}

func authzInteractionOps() []authzOp {
	const ok, created, gone, no = http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusForbidden
	newInteraction := func(_ *authzWorld, tg authzTarget) authzObj {
		return authzObj{"customer_id": tg.customer.Id, "type": "Call", "description": "a new call"}
	}
	by := func(who func(w *authzWorld, tg authzTarget) string) func(*testing.T, *authzWorld, authzTarget, []byte) {
		return func(t *testing.T, w *authzWorld, tg authzTarget, body []byte) {
			var it gen.Interaction
			if err := json.Unmarshal(body, &it); err != nil {
				t.Fatal(err)
			}
			if want := who(w, tg); it.UserId != want {
				t.Errorf("user_id %s, want %s", it.UserId, want)
			}
		}
	}
	caller := func(_ *authzWorld, tg authzTarget) string { return tg.caller.Id }
	other := func(w *authzWorld, _ authzTarget) string { return w.other.Id }
	owner := func(w *authzWorld, _ authzTarget) string { return w.owner.Id }
	return []authzOp{
		// Any member may record an interaction, with any customer, as themselves.
		{name: "POST /interactions", kind: "interactions", method: http.MethodPost, path: authzFixed("/interactions"),
			body: newInteraction, want: authzAllow(created, created, created), then: by(caller)},
		{name: "POST /interactions user_id=other member", kind: "interactions", method: http.MethodPost, path: authzFixed("/interactions"),
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(newInteraction(w, tg), authzObj{"user_id": w.other.Id})
			}, want: authzAllow(created, no, created), then: by(other)},
		{name: "POST /interactions user_id=owner member", kind: "interactions", method: http.MethodPost, path: authzFixed("/interactions"),
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(newInteraction(w, tg), authzObj{"user_id": w.owner.Id})
			}, want: authzAllow(created, created, no), then: by(owner)},
		{name: "GET /interactions", kind: "interactions", method: http.MethodGet, path: authzFixed("/interactions"), want: authzAllow(ok, ok, ok)},
		{name: "GET /interactions/{id}", kind: "interactions", method: http.MethodGet, path: authzInteractionPath, want: authzAllow(ok, ok, ok)},
		{name: "GET /interactions/customer/{customer_id} (deprecated)", kind: "interactions", method: http.MethodGet,
			path: func(tg authzTarget) string { return "/interactions/customer/" + tg.customer.Id }, want: authzAllow(ok, ok, ok)},

		{name: "PUT /interactions/{id}", kind: "interactions", method: http.MethodPut, path: authzInteractionPath,
			body: func(_ *authzWorld, tg authzTarget) authzObj { return authzInteractionReplacement(tg) },
			want: authzAllow(ok, ok, no), then: by(owner)},
		{name: "PUT /interactions/{id} user_id=other member", kind: "interactions", method: http.MethodPut, path: authzInteractionPath,
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzWith(authzInteractionReplacement(tg), authzObj{"user_id": w.other.Id})
			}, want: authzAllow(ok, no, no), then: by(other)},
		{name: "PATCH /interactions/{id}", kind: "interactions", method: http.MethodPatch, path: authzInteractionPath,
			body: func(*authzWorld, authzTarget) authzObj {
				return authzObj{"status": "Resolved", "description": "patched"}
			},
			want: authzAllow(ok, ok, no)},
		{name: "PATCH /interactions/{id} user_id=other member", kind: "interactions", method: http.MethodPatch, path: authzInteractionPath,
			body: func(w *authzWorld, _ authzTarget) authzObj { return authzObj{"user_id": w.other.Id} },
			want: authzAllow(ok, no, no), then: by(other)},
		// A member taking someone else's interaction over.
		{name: "PATCH /interactions/{id} user_id=caller", kind: "interactions", method: http.MethodPatch, path: authzInteractionPath,
			body: func(w *authzWorld, tg authzTarget) authzObj {
				return authzObj{"user_id": w.callerID(tg), "status": "InProgress"}
			}, want: authzAllow(ok, ok, no), then: by(caller)},
		{name: "DELETE /interactions/{id}", kind: "interactions", method: http.MethodDelete, path: authzInteractionPath,
			want: authzAllow(gone, gone, no)},
	}
}

// TestAuthzMatrix runs every operation that needs a token as every kind of
// caller, each cell on the same database.
func TestAuthzMatrix(t *testing.T) {
	w := newAuthzWorld(t)
	base := authzSnapshotOf(t, w.db)
	cells := 0
	for _, group := range []struct {
		name string
		ops  []authzOp
	}{{"users", authzUserOps()}, {"customers", authzCustomerOps()}, {"interactions", authzInteractionOps()}} {
		t.Run(group.name, func(t *testing.T) { cells += authzRunMatrix(t, w, base, group.ops) })
	}
	if d := base.diff(authzSnapshotOf(t, w.db)); len(d) > 0 {
		t.Errorf("the matrix did not leave the database as it found it:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("%d cells", cells)
}

// TestAuthzMatrixCoversTheSpec fails when the spec has an operation that needs
// a token and that the matrix does not run.
func TestAuthzMatrixCoversTheSpec(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, ops := range [][]authzOp{authzUserOps(), authzCustomerOps(), authzInteractionOps()} {
		for _, op := range ops {
			// "PATCH /customers/{id} owner_id=…" runs "PATCH /customers/{id}".
			route := strings.Join(strings.Fields(op.name)[:2], " ")
			route, _, _ = strings.Cut(route, "?")
			covered[route] = true
		}
	}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			security := spec.Security
			if op.Security != nil {
				security = *op.Security
			}
			if len(security) == 0 {
				continue // needs no token: sign-in, refresh, sign-out, probes
			}
			if route := method + " " + path; !covered[route] {
				t.Errorf("the authorization matrix does not run %s (%s)", route, op.OperationID)
			}
		}
	}
}

// TestAuthzLastAdmin: admins may do anything but leave the CRM without an
// active admin (or change their own password without the current one), and a
// change of role takes effect on the very next request.
func TestAuthzLastAdmin(t *testing.T) {
	const ok, created, no, conflict = http.StatusOK, http.StatusCreated, http.StatusForbidden, http.StatusConflict
	e := newEnv(t)
	w := &authzWorld{e: e, db: rawDB(t, e)}
	w.admin = e.bootstrap()
	w.owner = e.addUser(w.admin, "Mia Member", gen.Member)
	admin, member := w.admin, w.owner
	self := "/users/" + admin.Id
	keep := authzObj{"name": admin.Name, "email": admin.Email, "role": "admin", "status": "active"}
	newUser := func(name string) authzObj {
		return authzObj{"name": name, "email": strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com", "password": "a fine password"}
	}

	type step struct {
		name   string
		as     *user
		method string
		path   string
		body   any
		want   int
	}
	run := func(steps []step) {
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) { w.call(t, s.as.token, s.method, s.path, s.body, s.want) })
		}
	}
	run([]step{
		{"demote self by PATCH", &admin, http.MethodPatch, self, authzObj{"role": "member"}, conflict},
		{"deactivate self by PATCH", &admin, http.MethodPatch, self, authzObj{"status": "inactive"}, conflict},
		{"demote self by PUT", &admin, http.MethodPut, self, authzWith(keep, authzObj{"role": "member"}), conflict},
		{"deactivate self by PUT", &admin, http.MethodPut, self, authzWith(keep, authzObj{"status": "inactive"}), conflict},
		{"delete self", &admin, http.MethodDelete, self, nil, conflict},
		{"a member demotes the admin", &member, http.MethodPatch, self, authzObj{"role": "member"}, no},
		{"a member deactivates the admin", &member, http.MethodPatch, self, authzObj{"status": "inactive"}, no},
		{"a member deletes the admin", &member, http.MethodDelete, self, nil, no},
		{"the last admin re-sends their own role and status", &admin, http.MethodPut, self, keep, ok},
		// Admins reset others' passwords; their own needs the current one too.
		{"the admin changes their own password without current_password", &admin, http.MethodPatch, self,
			authzObj{"password": "an admin's new password"}, http.StatusBadRequest},
		{"the admin changes their own password with a wrong current_password", &admin, http.MethodPatch, self,
			authzObj{"password": "an admin's new password", "current_password": "not it at all"}, http.StatusBadRequest},
	})

	// A second admin who is inactive does not count.
	second := e.addUser(admin, "Second Admin", gen.Admin)
	w.snap = nil
	run([]step{
		{"deactivate the second admin", &admin, http.MethodPatch, "/users/" + second.Id, authzObj{"status": "inactive"}, ok},
		{"demote self with only an inactive second admin", &admin, http.MethodPatch, self, authzObj{"role": "member"}, conflict},
		{"delete self with only an inactive second admin", &admin, http.MethodDelete, self, nil, conflict},
		{"the inactive second admin acts", &second, http.MethodPatch, self, authzObj{"role": "member"}, http.StatusUnauthorized},
		{"reactivate the second admin", &admin, http.MethodPatch, "/users/" + second.Id, authzObj{"status": "active"}, ok},
		{"the reactivated admin's old token stays dead", &second, http.MethodGet, "/users/me", nil, http.StatusUnauthorized},
	})
	// Deactivation ended the second admin's sign-ins for good: they sign in again.
	second.token = e.login(second.Email, second.password)
	run([]step{
		{"demote self with an active second admin", &admin, http.MethodPatch, self, authzObj{"role": "member"}, ok},
		// At once, not when a cache of roles expires.
		{"the demoted admin creates a user", &admin, http.MethodPost, "/users", newUser("Too Late"), no},
		{"the demoted admin promotes themself", &admin, http.MethodPatch, self, authzObj{"role": "admin"}, no},
		{"the demoted admin deletes the other admin", &admin, http.MethodDelete, "/users/" + second.Id, nil, no},
		{"the remaining admin demotes themself", &second, http.MethodPatch, "/users/" + second.Id, authzObj{"role": "member"}, conflict},
		{"the remaining admin deletes themself", &second, http.MethodDelete, "/users/" + second.Id, nil, conflict},
		// Promotion takes effect at once too.
		{"a member creates a user", &member, http.MethodPost, "/users", newUser("Not Yet"), no},
		{"the admin promotes the member", &second, http.MethodPatch, "/users/" + member.Id, authzObj{"role": "admin"}, ok},
		{"the promoted member creates a user", &member, http.MethodPost, "/users", newUser("Now Then"), created},
	})
}

// TestMassAssignment (OWASP API3): no body sets a server-owned field (id,
// timestamps, revision, the password hash, internal markers) or a field of
// another resource; every such request is refused with 400 naming the field,
// as an admin or as a member, and changes nothing. Fields that exist but that
// a member may not set on themselves are refused with 403.
func TestMassAssignment(t *testing.T) {
	w := newAuthzWorld(t)
	base := authzSnapshotOf(t, w.db)
	hashLike := "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo"
	serverOwned := authzObj{
		"id":            "0123456789abcdef01234567",
		"_id":           "0123456789abcdef01234567",
		"created_at":    "2020-01-01T00:00:00Z",
		"updated_at":    "2020-01-01T00:00:00Z",
		"revision":      99,
		"deleting_at":   "2020-01-01T00:00:00Z",
		"password_hash": hashLike,
		"passwordHash":  hashLike,
		"hash":          hashLike,
		"is_admin":      true,
	}
	// Fields that customers and interactions do not have.
	notOfRecords := authzObj{"role": "admin", "password": "a password of nobody", "owner": w.owner.Id}
	notOfInteractions := authzWith(notOfRecords, authzObj{"owner_id": w.owner.Id})

	subject, c, it := w.subject, w.customer, w.interaction
	type op struct {
		name, method, path string
		body               func() authzObj
		member             user     // the member who could otherwise make this request
		extra              authzObj // fields beyond serverOwned that this resource lacks
	}
	ops := []op{
		{"POST /users", http.MethodPost, "/users", func() authzObj {
			return authzObj{"name": "Mass User", "email": w.email("mass.user"), "password": "mass user password"}
		}, w.owner, nil},
		{"PUT /users/{id}", http.MethodPut, "/users/" + subject.Id, func() authzObj {
			return authzObj{"name": "Mass", "email": subject.Email, "role": "member", "status": "active"}
		}, subject, nil},
		{"PATCH /users/{id}", http.MethodPatch, "/users/" + subject.Id, func() authzObj { return authzObj{"name": "Mass"} }, subject, nil},
		{"POST /customers", http.MethodPost, "/customers", func() authzObj {
			return authzObj{"name": "Mass Customer", "email": w.email("mass.customer")}
		}, w.owner, notOfRecords},
		{"PUT /customers/{id}", http.MethodPut, "/customers/" + c.Id, func() authzObj {
			return authzObj{"name": "Mass", "email": c.Email, "status": "active"}
		}, w.owner, notOfRecords},
		{"PATCH /customers/{id}", http.MethodPatch, "/customers/" + c.Id, func() authzObj { return authzObj{"notes": "mass"} },
			w.owner, notOfRecords},
		{"POST /interactions", http.MethodPost, "/interactions", func() authzObj {
			return authzObj{"customer_id": c.Id, "type": "Call"}
		}, w.owner, notOfInteractions},
		{"PUT /interactions/{id}", http.MethodPut, "/interactions/" + it.Id, func() authzObj {
			return authzObj{"user_id": it.UserId, "customer_id": it.CustomerId, "type": "Call", "status": "Open"}
		}, w.owner, notOfInteractions},
		{"PATCH /interactions/{id}", http.MethodPatch, "/interactions/" + it.Id, func() authzObj { return authzObj{"status": "Resolved"} },
			w.owner, notOfInteractions},
	}
	requests := 0
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			// Without the injected field, the request would succeed: it is the
			// field alone that is refused.
			_, data := w.send(t, w.admin.token, o.method, o.path, o.body())
			if !strings.Contains(string(data), `"id":"`) {
				t.Fatalf("the plain request fails: %s", data)
			}
			base = authzSnapshotOf(t, w.db)

			fields := authzWith(serverOwned, o.extra)
			for _, field := range slices.Sorted(maps.Keys(fields)) {
				for _, as := range []struct {
					who  string
					user user
				}{{"admin", w.admin}, {"member", o.member}} {
					requests++
					body := authzWith(o.body(), authzObj{field: fields[field]})
					res, data := w.send(t, as.user.token, o.method, o.path, body)
					// Validation comes before authorization, so even a member
					// who may not make the request at all gets the 400.
					if checkAnswer(t, o.method, o.path+" "+field+" as "+as.who, res, data, http.StatusBadRequest) {
						wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input", "/"+field)
					}
				}
			}
			// Without a valid token the answer is 401 whatever the body holds;
			// POST /users is open to requests without a token (it creates the
			// first admin), so its body is checked first.
			unauthenticated := http.StatusUnauthorized
			if o.path == "/users" {
				unauthenticated = http.StatusBadRequest
			}
			for _, tok := range []struct{ who, token string }{{authzNoToken, ""}, {authzInactive, w.paused.token}, {authzDeleted, w.gone.token}} {
				requests++
				res, data := w.send(t, tok.token, o.method, o.path, authzWith(o.body(), authzObj{"id": serverOwned["id"]}))
				checkAnswer(t, o.method, o.path+" id as "+tok.who, res, data, unauthenticated)
			}

			after := authzSnapshotOf(t, w.db)
			if d := base.diff(after); len(d) > 0 {
				t.Errorf("refused requests changed the database:\n%s", strings.Join(d, "\n"))
				base.restore(t, w.db, after)
			}
		})
	}

	// Fields that exist, but that a member may not set on themselves.
	t.Run("member", func(t *testing.T) {
		w.snap = base
		for _, tc := range []struct {
			name, method, path string
			as                 user
			body               authzObj
		}{
			{"sets own role by PATCH", http.MethodPatch, "/users/" + subject.Id, subject, authzObj{"role": "admin"}},
			{"sets own role by PUT", http.MethodPut, "/users/" + subject.Id, subject,
				authzObj{"name": subject.Name, "email": subject.Email, "role": "admin", "status": "active"}},
			{"sets own status", http.MethodPatch, "/users/" + subject.Id, subject, authzObj{"status": "inactive"}},
			{"sets own email", http.MethodPatch, "/users/" + subject.Id, subject, authzObj{"email": "someone.else@example.com"}},
			{"sets own role with a harmless change", http.MethodPatch, "/users/" + subject.Id, subject,
				authzObj{"name": "Innocent", "company": "Harmless Ltd", "role": "admin"}},
			{"creates an admin", http.MethodPost, "/users", w.owner,
				authzObj{"name": "Sneaky", "email": "sneaky@example.com", "password": "sneaky password", "role": "admin"}},
			{"creates a customer for someone else", http.MethodPost, "/customers", w.owner,
				authzObj{"name": "Planted", "email": "planted@example.org", "owner_id": w.other.Id}},
			{"records an interaction for someone else", http.MethodPost, "/interactions", w.owner,
				authzObj{"customer_id": c.Id, "type": "Call", "user_id": w.other.Id}},
		} {
			requests++
			t.Run(tc.name, func(t *testing.T) { w.call(t, tc.as.token, tc.method, tc.path, tc.body, http.StatusForbidden) })
		}
	})
	t.Logf("%d mass assignment requests", requests)

	// The password field takes a password, never a hash: whatever it holds is
	// hashed, so a hash sent as a password is not stored as the account's hash.
	t.Run("a hash sent as the password is hashed", func(t *testing.T) {
		w.call(t, w.admin.token, http.MethodPatch, "/users/"+subject.Id, authzObj{"password": hashLike}, http.StatusOK)
		id, err := bson.ObjectIDFromHex(subject.Id)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Password string `bson:"password"`
		}
		if err := w.db.Collection("users").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.Password == hashLike || !strings.HasPrefix(doc.Password, "$argon2id$") {
			t.Errorf("stored password field %q: the hash sent was stored as it was", doc.Password)
		}
		e := *w.e
		e.t = t
		e.login(subject.Email, hashLike) // the string sent is the password now
	})
}

// authzSnapshot holds every document of the collections a request could
// touch: collection → _id → document.
type authzSnapshot map[string]map[string]bson.Raw

var authzCollections = []string{"users", "customers", "interactions", "refresh_tokens", "meta"}

// authzSnapshotOf reads every document of the collections.
func authzSnapshotOf(t *testing.T, db *mongo.Database) authzSnapshot {
	t.Helper()
	ctx := context.Background()
	s := authzSnapshot{}
	for _, name := range authzCollections {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatalf("snapshot of %s: %v", name, err)
		}
		docs := map[string]bson.Raw{}
		for cur.Next(ctx) {
			docs[cur.Current.Lookup("_id").String()] = slices.Clone(cur.Current)
		}
		if err := cur.Err(); err != nil {
			t.Fatalf("snapshot of %s: %v", name, err)
		}
		_ = cur.Close(ctx)
		s[name] = docs
	}
	return s
}

// diff describes how after differs from s, a line per document.
func (s authzSnapshot) diff(after authzSnapshot) []string {
	var out []string
	for _, name := range authzCollections {
		before, now := s[name], after[name]
		for _, id := range slices.Sorted(maps.Keys(before)) {
			doc, ok := now[id]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("  %s %s deleted: %s", name, id, before[id]))
			case !bytes.Equal(doc, before[id]):
				out = append(out, fmt.Sprintf("  %s %s changed:\n    before %s\n    after  %s", name, id, before[id], doc))
			}
		}
		for _, id := range slices.Sorted(maps.Keys(now)) {
			if _, ok := before[id]; !ok {
				out = append(out, fmt.Sprintf("  %s %s added: %s", name, id, now[id]))
			}
		}
	}
	return out
}

// restore writes the database, which is now as in now, back to s: it removes
// the documents added and puts back those changed or deleted.
func (s authzSnapshot) restore(t *testing.T, db *mongo.Database, now authzSnapshot) {
	t.Helper()
	ctx := context.Background()
	for _, name := range authzCollections {
		coll := db.Collection(name)
		for id, doc := range now[name] {
			if _, ok := s[name][id]; !ok {
				if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: doc.Lookup("_id")}}); err != nil {
					t.Fatalf("restore %s %s: %v", name, id, err)
				}
			}
		}
	}
	for _, name := range authzCollections {
		coll := db.Collection(name)
		for id, doc := range s[name] {
			if cur, ok := now[name][id]; ok && bytes.Equal(cur, doc) {
				continue
			}
			_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.Lookup("_id")}}, doc, options.Replace().SetUpsert(true))
			if err != nil {
				t.Fatalf("restore %s %s: %v", name, id, err)
			}
		}
	}
}
