package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// Sessions: refresh token rotation and reuse detection, sign-out, what ends a
// user's access (deactivation, deletion, a password change), password changes,
// the OAuth 2.0 password grant, login throttling, and that logs never hold a
// password, hash or token.

// loginFull signs in and returns the whole token response.
func (e *env) loginFull(email, password string) gen.TokenResponse {
	e.t.Helper()
	e.check.secret(password)
	res, err := e.client.LoginUserWithResponse(context.Background(), gen.LoginUserJSONRequestBody{Email: email, Password: password})
	mustStatus(e.t, res, err, http.StatusOK)
	e.check.secret(res.JSON200.RefreshToken)
	return *res.JSON200
}

// refresh exchanges a refresh token and returns the status and new tokens.
func (e *env) refresh(token string) (int, *gen.TokenResponse) {
	e.t.Helper()
	res, err := e.client.RefreshTokenWithResponse(context.Background(), gen.RefreshTokenJSONRequestBody{RefreshToken: token})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.JSON200 != nil {
		e.check.secret(res.JSON200.RefreshToken)
	}
	return res.StatusCode(), res.JSON200
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	first := e.loginFull(admin.Email, admin.password)

	status, second := e.refresh(first.RefreshToken)
	if status != http.StatusOK || second.RefreshToken == first.RefreshToken || second.AccessToken == "" {
		t.Fatalf("refresh: %d %+v", status, second)
	}
	if res, _ := e.raw(http.MethodGet, "/users/me", second.AccessToken, "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("the refreshed access token is refused: %d", res.StatusCode)
	}
	status, third := e.refresh(second.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("second refresh: %d", status)
	}

	// Presenting a spent token again means it was copied: the whole family —
	// including the newest token, which the thief or the owner holds — dies.
	res, body := e.raw(http.MethodPost, "/auth/refresh", "", "application/json", fmt.Sprintf(`{"refresh_token":%q}`, first.RefreshToken))
	wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "invalid-credentials")
	if status, _ := e.refresh(third.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("after reuse, the family's newest token still refreshes: %d", status)
	}

	// Another sign-in is another family, untouched.
	other := e.loginFull(admin.Email, admin.password)
	if status, _ := e.refresh(other.RefreshToken); status != http.StatusOK {
		t.Errorf("an unrelated sign-in was revoked: %d", status)
	}

	// A refresh token is no access token.
	res, body = e.raw(http.MethodGet, "/users/me", third.RefreshToken, "", "")
	wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "unauthorized")

	for _, bad := range []string{"not-a-token", strings.Repeat("A", 43)} {
		if status, _ := e.refresh(bad); status != http.StatusUnauthorized {
			t.Errorf("refresh with %q: %d", bad, status)
		}
	}
}

// A refresh token presented several times at once is reuse like any other:
// at most one presenter gets new tokens, and those die with the family, which
// the others' presentation revoked — also when that revocation ran before
// the new tokens were stored.
func TestConcurrentRefreshOfOneToken(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	for round := range 5 {
		tok := e.loginFull(admin.Email, admin.password)
		const n = 8
		var wg sync.WaitGroup
		statuses := make([]int, n)
		issued := make([]*gen.TokenResponse, n)
		for i := range n {
			wg.Go(func() { statuses[i], issued[i] = e.refresh(tok.RefreshToken) })
		}
		wg.Wait()
		for i, s := range statuses {
			switch {
			case s == http.StatusOK:
				if again, _ := e.refresh(issued[i].RefreshToken); again != http.StatusUnauthorized {
					t.Errorf("round %d: the token of a reused sign-in still refreshes: %d", round, again)
				}
			case s != http.StatusUnauthorized:
				t.Errorf("round %d: status %d", round, s)
			}
		}
		if ok := slices.Index(statuses, http.StatusOK); ok >= 0 && slices.Index(statuses[ok+1:], http.StatusOK) >= 0 {
			t.Errorf("round %d: more than one concurrent exchange of one refresh token succeeded (%v)", round, statuses)
		}
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	tok := e.loginFull(admin.Email, admin.password)
	status, next := e.refresh(tok.RefreshToken)
	if status != http.StatusOK {
		t.Fatal(status)
	}
	res, err := e.client.LogoutWithResponse(context.Background(), gen.LogoutJSONRequestBody{RefreshToken: next.RefreshToken})
	mustStatus(t, res, err, http.StatusNoContent)
	if status, _ := e.refresh(next.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("a signed-out refresh token still works: %d", status)
	}
	// Signing out twice, or with a token nobody issued, is fine.
	for _, tok := range []string{next.RefreshToken, "never-issued"} {
		res, err := e.client.LogoutWithResponse(context.Background(), gen.LogoutJSONRequestBody{RefreshToken: tok})
		mustStatus(t, res, err, http.StatusNoContent)
	}
}

func TestWhatEndsAccess(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()

	t.Run("deactivation", func(t *testing.T) {
		bob := e.addUser(admin, "Bob Deactivated", gen.Member)
		tok := e.loginFull(bob.Email, bob.password)
		res, body := e.raw(http.MethodPatch, "/users/"+bob.Id, admin.token, "application/json", `{"status":"inactive"}`)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("deactivate: %d %s", res.StatusCode, body)
		}
		if res, _ := e.raw(http.MethodGet, "/users/me", tok.AccessToken, "", ""); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("access token after deactivation: %d", res.StatusCode)
		}
		if status, _ := e.refresh(tok.RefreshToken); status != http.StatusUnauthorized {
			t.Errorf("refresh after deactivation: %d", status)
		}
		res, body = e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":%q}`, bob.Email, bob.password))
		wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "invalid-credentials")
		// Reactivation lets them sign in again, but old refresh tokens stay dead.
		e.raw(http.MethodPatch, "/users/"+bob.Id, admin.token, "application/json", `{"status":"active"}`)
		fresh := e.loginFull(bob.Email, bob.password)
		if status, _ := e.refresh(tok.RefreshToken); status != http.StatusUnauthorized {
			t.Errorf("an old refresh token came back to life: %d", status)
		}
		if res, _ := e.raw(http.MethodGet, "/users/me", tok.AccessToken, "", ""); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("an old access token came back to life: %d", res.StatusCode)
		}
		if res, _ := e.raw(http.MethodGet, "/users/me", fresh.AccessToken, "", ""); res.StatusCode != http.StatusOK {
			t.Errorf("a sign-in after reactivation: %d", res.StatusCode)
		}
	})

	t.Run("deletion", func(t *testing.T) {
		carol := e.addUser(admin, "Carol Deleted", gen.Member)
		tok := e.loginFull(carol.Email, carol.password)
		res, body := e.raw(http.MethodDelete, "/users/"+carol.Id, admin.token, "", "")
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.StatusCode, body)
		}
		res, body = e.raw(http.MethodGet, "/users/me", tok.AccessToken, "", "")
		wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "unauthorized")
		if status, _ := e.refresh(tok.RefreshToken); status != http.StatusUnauthorized {
			t.Errorf("refresh after deletion: %d", status)
		}
	})

	t.Run("demotion takes effect at once", func(t *testing.T) {
		dave := e.addUser(admin, "Dave Admin", gen.Admin)
		if res, _ := e.raw(http.MethodGet, "/users", dave.token, "", ""); res.StatusCode != http.StatusOK {
			t.Fatal(res.StatusCode)
		}
		e.raw(http.MethodPatch, "/users/"+dave.Id, admin.token, "application/json", `{"role":"member"}`)
		pw := "a new user password"
		res, _ := e.raw(http.MethodPost, "/users", dave.token, "application/json", fmt.Sprintf(`{"name":"X","email":"x@example.com","password":%q}`, pw))
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("a demoted admin's token still creates users: %d", res.StatusCode)
		}
	})
}

// TestTokenVersionsAcrossServers changes a user's token version behind this
// server's back, as another server of a cluster does, and as a sign-in that
// raced a password change sees it.
func TestTokenVersionsAcrossServers(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	bob := e.addUser(admin, "Bob Member", gen.Member)
	before := e.loginFull(bob.Email, bob.password)
	if res, _ := e.raw(http.MethodGet, "/users/me", before.AccessToken, "", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("before: %d", res.StatusCode) // this server now remembers bob at version 0
	}
	id, err := bson.ObjectIDFromHex(bob.Id)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.store.GetUser(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateUser(t.Context(), id, u.Revision, store.UserChanges{TokenVersion: ptr(u.TokenVersion + 1)}); err != nil {
		t.Fatal(err)
	}

	// A refresh token from a sign-in before the change is refused, even if
	// it escaped the revocation that goes with the change.
	if status, _ := e.refresh(before.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("a refresh token of the old version: %d", status)
	}
	// A sign-in after the change works at once, although this server still
	// remembers bob at the old version.
	after := e.loginFull(bob.Email, bob.password)
	if res, body := e.raw(http.MethodGet, "/users/me", after.AccessToken, "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("a token of the new version: %d %s", res.StatusCode, body)
	}
	if res, _ := e.raw(http.MethodGet, "/users/me", before.AccessToken, "", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token of the old version, once the new one was seen: %d", res.StatusCode)
	}
}

func TestPasswordChange(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	bob := e.addUser(admin, "Bob Member", gen.Member)
	tok := e.loginFull(bob.Email, bob.password)
	newPassword := "bobs brand new password"
	e.check.secret(newPassword)
	patch := func(token, body string) (*http.Response, []byte) {
		return e.raw(http.MethodPatch, "/users/"+bob.Id, token, "application/merge-patch+json", body)
	}

	res, body := patch(bob.token, fmt.Sprintf(`{"password":%q}`, newPassword))
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/current_password")
	res, body = patch(bob.token, fmt.Sprintf(`{"password":%q,"current_password":"wrong guess"}`, newPassword))
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/current_password")
	// Without a new password, a current one would be checked by nobody.
	res, body = patch(bob.token, fmt.Sprintf(`{"company":"Bob Ltd","current_password":%q}`, bob.password))
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/current_password")
	if _, body = e.raw(http.MethodGet, "/users/"+bob.Id, bob.token, "", ""); strings.Contains(string(body), "Bob Ltd") {
		t.Errorf("a refused change was made: %s", body)
	}
	res, body = patch(bob.token, `{"password":"short","current_password":"x"}`)
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/password")
	res, body = patch(bob.token, fmt.Sprintf(`{"password":%q}`, strings.Repeat("p", 257)))
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/password")

	res, body = patch(bob.token, fmt.Sprintf(`{"password":%q,"current_password":%q}`, newPassword, bob.password))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("change own password: %d %s", res.StatusCode, body)
	}
	// The old password is gone, the new one works, and sign-ins made with the
	// old one can no longer refresh.
	res, _ = e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":%q}`, bob.Email, bob.password))
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password still signs in: %d", res.StatusCode)
	}
	afterChange := e.loginFull(bob.Email, newPassword)
	if status, _ := e.refresh(tok.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("a refresh token from before the password change still works: %d", status)
	}
	for _, old := range []string{tok.AccessToken, bob.token} {
		if res, _ := e.raw(http.MethodGet, "/users/me", old, "", ""); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("an access token from before the password change still works: %d", res.StatusCode)
		}
	}
	if res, _ := e.raw(http.MethodGet, "/users/me", afterChange.AccessToken, "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("a sign-in with the new password: %d", res.StatusCode)
	}

	// An admin resets another user's password without knowing it.
	reset := "reset by the admin"
	e.check.secret(reset)
	res, body = patch(admin.token, fmt.Sprintf(`{"password":%q}`, reset))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("admin reset: %d %s", res.StatusCode, body)
	}
	e.loginFull(bob.Email, reset)
	if res, _ := e.raw(http.MethodGet, "/users/me", afterChange.AccessToken, "", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("an access token from before the admin's reset still works: %d", res.StatusCode)
	}
	if res, _ := e.raw(http.MethodGet, "/users/me", admin.token, "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("resetting bob's password ended the admin's access: %d", res.StatusCode)
	}

	// But an admin changing their own password proves who they are.
	res, body = e.raw(http.MethodPatch, "/users/"+admin.Id, admin.token, "application/json", `{"password":"admins new password"}`)
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/current_password")
}

// TestTokenEndpoint: POST /auth/token takes the OAuth 2.0 password and
// refresh token grants as forms, as Swagger UI's Authorize dialog and other
// OAuth 2.0 clients send them, and answers failures with RFC 6749's error
// members beside the problem's.
func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	const form = "application/x-www-form-urlencoded"
	grant := url.Values{"grant_type": {"password"}, "username": {admin.Email}, "password": {admin.password}, "scope": {""}, "client_id": {"swagger-ui"}}
	res, body := e.raw(http.MethodPost, "/auth/token", "", form, grant.Encode())
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("password grant: %d %s", res.StatusCode, body)
	}
	var tok gen.TokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.TokenType != gen.Bearer {
		t.Fatalf("token response %s (%v)", body, err)
	}
	e.check.secret(tok.RefreshToken)

	oauthError := func(body []byte, want string) {
		t.Helper()
		var p gen.Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Error == nil || *p.Error != want || p.ErrorDescription == nil || *p.ErrorDescription != *p.Detail {
			t.Errorf("want error %q and error_description = detail: %s", want, body)
		}
	}
	wrong := url.Values{"grant_type": {"password"}, "username": {admin.Email}, "password": {"not the password"}}
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, wrong.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-credentials") // RFC 6749 section 5.2
	oauthError(body, "invalid_grant")
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, url.Values{"username": {admin.Email}}.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/grant_type")
	oauthError(body, "invalid_request")
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, url.Values{"grant_type": {"password"}, "username": {admin.Email}}.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/password")
	oauthError(body, "invalid_request")
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, url.Values{"grant_type": {"client_credentials"}}.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/grant_type")
	oauthError(body, "unsupported_grant_type")
	// A grant type given twice, or empty, is a malformed request, not an
	// unknown grant (RFC 6749 section 5.2).
	for _, malformed := range []string{"grant_type=password&grant_type=password", "grant_type="} {
		res, body = e.raw(http.MethodPost, "/auth/token", "", form, malformed+"&username="+url.QueryEscape(admin.Email)+"&password="+url.QueryEscape(admin.password))
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/grant_type")
		oauthError(body, "invalid_request")
	}
	// Other fields sent empty are refused, naming them, before any password
	// check: they never count as failed sign-ins (six in a row here, more
	// than the throttle allows) and never lock the account.
	for range 6 {
		for field, form1 := range map[string]string{
			"/password":      "grant_type=password&username=" + url.QueryEscape(admin.Email) + "&password=",
			"/username":      "grant_type=password&username=&password=" + url.QueryEscape(admin.password),
			"/refresh_token": "grant_type=refresh_token&refresh_token=",
		} {
			res, body = e.raw(http.MethodPost, "/auth/token", "", form, form1)
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", field)
			oauthError(body, "invalid_request")
		}
	}
	if res, body = e.raw(http.MethodPost, "/auth/token", "", form, grant.Encode()); res.StatusCode != http.StatusOK {
		t.Fatalf("the right password after empty ones: %d %s", res.StatusCode, body)
	}
	// Other operations' problems have no OAuth members.
	res, body = e.raw(http.MethodPost, "/users/login", "", "application/json", `{"email":"`+admin.Email+`","password":"not the password"}`)
	if p := wantProblem(t, http.StatusUnauthorized, body, res.StatusCode, "invalid-credentials"); p.Error != nil {
		t.Errorf("POST /users/login answered an OAuth error: %s", body)
	}

	// The refresh token grant rotates the token as POST /auth/refresh does.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"postman"}}
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, refresh.Encode())
	var next gen.TokenResponse
	if err := json.Unmarshal(body, &next); res.StatusCode != http.StatusOK || err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token grant: %d %s", res.StatusCode, body)
	}
	e.check.secret(next.RefreshToken)
	if status, _ := e.refresh(tok.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("the refresh token spent by the form grant still works: %d", status)
	}
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, url.Values{"grant_type": {"refresh_token"}}.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/refresh_token")

	// A field given twice is refused (RFC 6749 section 3.2), not read as its
	// first value; and the refused refresh token stays unspent. (Sending
	// tok again above revoked next with it: a new sign-in.)
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, grant.Encode())
	if err := json.Unmarshal(body, &next); res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("password grant: %d %s", res.StatusCode, body)
	}
	e.check.secret(next.RefreshToken)
	grant.Add("username", "someone.else@example.com")
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, grant.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/username")
	twice := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken, "another"}}
	res, body = e.raw(http.MethodPost, "/auth/token", "", form, twice.Encode())
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/refresh_token")
	if status, _ := e.refresh(next.RefreshToken); status != http.StatusOK {
		t.Errorf("the refresh token of a refused form no longer works: %d", status)
	}

	// Sign-in and refresh themselves take JSON only: a generator that met two
	// media types on one operation sent neither correctly.
	for _, path := range []string{"/users/login", "/auth/refresh"} {
		res, body = e.raw(http.MethodPost, path, "", form, refresh.Encode())
		wantProblem(t, http.StatusUnsupportedMediaType, body, res.StatusCode, "unsupported-media-type")
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	bob := e.addUser(admin, "Bob Inactive", gen.Member)
	e.raw(http.MethodPatch, "/users/"+bob.Id, admin.token, "application/json", `{"status":"inactive"}`)

	shape := func(email, password string) string {
		res, body := e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
		var p map[string]any
		_ = json.Unmarshal(body, &p)
		delete(p, "request_id")
		b, _ := json.Marshal(p)
		return strconv.Itoa(res.StatusCode) + " " + string(b)
	}
	unknown := shape("nobody@example.com", "whatever password")
	wrong := shape(admin.Email, "not the password")
	inactive := shape(bob.Email, bob.password)
	if unknown != wrong || wrong != inactive || !strings.HasPrefix(unknown, "401 ") {
		t.Errorf("login failures differ:\nunknown email:  %s\nwrong password: %s\ndeactivated:    %s", unknown, wrong, inactive)
	}
}

// Guesses sent at once are held to the limit too: each is counted when it
// is let through, not when its password check, which takes tens of
// milliseconds, fails.
func TestParallelGuessesAreThrottled(t *testing.T) {
	e := newEnv(t) // the default limits: 5 per account and address
	admin := e.bootstrap()
	const guesses = 16
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			res, _ := e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":"wrong guess %d"}`, admin.Email, i))
			mu.Lock()
			statuses[res.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	// Every guess let through is checked and fails, and one is refused only
	// once the limit's worth are let through: exactly that many 401s.
	if statuses[http.StatusUnauthorized] != api.DefaultThrottleLimits.PerAccountAndIP || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != guesses {
		t.Fatalf("%d guesses at once: %v; want %d password checks (401), the rest 429",
			guesses, statuses, api.DefaultThrottleLimits.PerAccountAndIP)
	}
	// And once they are decided, the owner is locked out for the window,
	// as after guesses one at a time.
	res, _ := e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":%q}`, admin.Email, admin.password))
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right password after %d failures: %d, want 429", statuses[http.StatusUnauthorized], res.StatusCode)
	}
}

// What a lockout looks like over HTTP. The counting, the windows and their
// end are TestThrottle* in api/, on a clock of the test's own: here the window
// is long enough that no machine is slow enough for it to end.
func TestLoginThrottling(t *testing.T) {
	window := time.Hour
	e := newEnv(t, withThrottle(api.ThrottleLimits{Window: window, PerAccountAndIP: 3, PerIP: 6, PerAccount: 100}))
	admin := e.bootstrap()
	login := func(email, password string) (*http.Response, []byte) {
		return e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	}

	for range 3 {
		if res, body := login(admin.Email, "wrong password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure before the limit: %d %s", res.StatusCode, body)
		}
	}
	// Over the limit: even the right password is refused, with a problem
	// and the time to wait.
	res, body := login(admin.Email, admin.password)
	wantProblem(t, http.StatusTooManyRequests, body, res.StatusCode, "too-many-requests")
	retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > int(window.Seconds()) {
		t.Errorf("Retry-After %q, want 1 to %d seconds", res.Header.Get("Retry-After"), int(window.Seconds()))
	}
	// The lockout is the account's from this address, not the address's.
	if res, body := login("someone.else@example.com", "guess"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("another account is locked too: %d %s", res.StatusCode, body)
	}
}

// TestLogsHoldNoSecrets runs a full session — login, refresh, password change,
// a wrong login, logout — and searches the server's log for the passwords, the
// tokens and the hashes.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	bob := e.addUser(admin, "Bob Member", gen.Member)
	tok := e.loginFull(bob.Email, bob.password)
	_, refreshed := e.refresh(tok.RefreshToken)
	newPassword := "a completely new password"
	e.raw(http.MethodPatch, "/users/"+bob.Id, bob.token, "application/json",
		fmt.Sprintf(`{"password":%q,"current_password":%q}`, newPassword, bob.password))
	e.raw(http.MethodPost, "/users/login", "", "application/json", fmt.Sprintf(`{"email":%q,"password":"a wrong password"}`, bob.Email))
	e.raw(http.MethodPost, "/auth/logout", "", "application/json", fmt.Sprintf(`{"refresh_token":%q}`, refreshed.RefreshToken))
	e.raw(http.MethodGet, "/users/me", "a-garbage-token-value", "", "")

	logs := e.logs.String()
	if !strings.Contains(logs, `"route":"/users/login"`) {
		t.Fatal("the log holds no access lines: the test would prove nothing")
	}
	for name, secret := range map[string]string{
		"admin password": admin.password, "member password": bob.password, "new password": newPassword,
		"wrong password": "a wrong password", "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
		"rotated refresh token": refreshed.RefreshToken, "garbage token": "a-garbage-token-value",
		"argon2 hash": "$argon2id$", "bearer header": "Bearer ",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}
