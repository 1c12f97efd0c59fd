package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// LoginUser exchanges email and password for an access token and a refresh
// token.
func (h *Handler) LoginUser(ctx context.Context, req gen.LoginUserRequestObject) (gen.LoginUserResponseObject, error) {
	tokens, err := h.signIn(ctx, req.Body.Email, req.Body.Password)
	if err != nil {
		return nil, err
	}
	return gen.LoginUser200JSONResponse{Body: tokens, Headers: gen.LoginUser200ResponseHeaders{CacheControl: ptr("no-store")}}, nil
}

// RequestToken is the OAuth 2.0 token endpoint: the password grant signs in
// as LoginUser does, the refresh token grant rotates as RefreshToken does.
func (h *Handler) RequestToken(ctx context.Context, req gen.RequestTokenRequestObject) (gen.RequestTokenResponseObject, error) {
	b := req.Body
	var tokens gen.TokenResponse
	var err error
	switch b.GrantType {
	case gen.TokenGrantRequestGrantTypePassword:
		missing := &InvalidError{}
		if b.Username == nil {
			missing.Fields = append(missing.Fields, FieldError{Pointer: "/username", Detail: "is required with grant_type=password"})
		}
		if b.Password == nil {
			missing.Fields = append(missing.Fields, FieldError{Pointer: "/password", Detail: "is required with grant_type=password"})
		}
		if len(missing.Fields) > 0 {
			return nil, missing
		}
		tokens, err = h.signIn(ctx, *b.Username, *b.Password)
	default: // the spec allows no other grant type
		if b.RefreshToken == nil {
			return nil, invalidField("/refresh_token", "is required with grant_type=refresh_token")
		}
		tokens, err = h.refresh(ctx, *b.RefreshToken)
	}
	if err != nil {
		return nil, err
	}
	return gen.RequestToken200JSONResponse{Body: tokens, Headers: gen.RequestToken200ResponseHeaders{CacheControl: ptr("no-store")}}, nil
}

// signIn checks email and password, counting failures against the sign-in
// throttle, and issues tokens of a new family.
func (h *Handler) signIn(ctx context.Context, email, password string) (gen.TokenResponse, error) {
	account, ip := normalizeEmail(email), requestInfoFrom(ctx).clientIP
	guess, err := h.throttle.begin(account, ip)
	if err != nil {
		return gen.TokenResponse{}, err
	}
	defer guess.end()
	u, err := h.checkPassword(ctx, account, password)
	if errors.Is(err, ErrInvalidCredentials) {
		guess.failed()
	}
	if err != nil {
		return gen.TokenResponse{}, err
	}
	guess.succeeded()
	return h.issueTokens(ctx, u, auth.NewFamily())
}

// checkPassword returns the active user with email and password. Unknown email,
// wrong password and deactivated account fail alike, after the same work.
func (h *Handler) checkPassword(ctx context.Context, email, password string) (*store.User, error) {
	u, err := h.store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		if err := h.passwords.Waste(ctx, password); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	ok, rehash, err := h.passwords.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return nil, err
	}
	if !ok || u.Status != store.StatusActive {
		return nil, ErrInvalidCredentials
	}
	if rehash {
		// An old (bcrypt, or weaker argon2id) hash is replaced while the password
		// is at hand. Failing to do so must not fail the login.
		if hash, err := h.passwords.Hash(ctx, password); err == nil {
			if err := h.store.UpgradePasswordHash(ctx, u.ID, u.Revision, hash); err != nil && !errors.Is(err, store.ErrStale) {
				h.log.WarnContext(ctx, "could not upgrade a password hash", "user_id", u.ID.Hex(), "error", err)
			}
		}
	}
	return u, nil
}

// issueTokens returns a new access token and a new refresh token of family.
func (h *Handler) issueTokens(ctx context.Context, u *store.User, family string) (gen.TokenResponse, error) {
	access, err := h.tokens.Issue(u.ID.Hex(), u.TokenVersion)
	if err != nil {
		return gen.TokenResponse{}, err
	}
	refresh, hash := auth.NewRefreshToken()
	err = h.store.CreateRefreshToken(ctx, &store.RefreshToken{
		Hash:         hash,
		UserID:       u.ID,
		Family:       family,
		ExpiresAt:    time.Now().Add(h.refreshTTL),
		TokenVersion: u.TokenVersion,
	})
	if err != nil {
		return gen.TokenResponse{}, err
	}
	return gen.TokenResponse{
		AccessToken:  access,
		TokenType:    gen.Bearer,
		ExpiresIn:    int(h.tokens.TTL().Seconds()),
		RefreshToken: refresh,
		User:         userOut(u),
	}, nil
}

// RefreshToken rotates a refresh token.
func (h *Handler) RefreshToken(ctx context.Context, req gen.RefreshTokenRequestObject) (gen.RefreshTokenResponseObject, error) {
	tokens, err := h.refresh(ctx, req.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	return gen.RefreshToken200JSONResponse{Body: tokens, Headers: gen.RefreshToken200ResponseHeaders{CacheControl: ptr("no-store")}}, nil
}

// refresh spends a refresh token and issues new tokens of its family.
func (h *Handler) refresh(ctx context.Context, token string) (gen.TokenResponse, error) {
	old, err := h.store.UseRefreshToken(ctx, auth.HashRefreshToken(token))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTokenReused) {
		return gen.TokenResponse{}, ErrInvalidCredentials
	}
	if err != nil {
		return gen.TokenResponse{}, err
	}
	u, err := h.store.GetUser(ctx, old.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Status != store.StatusActive || u.TokenVersion != old.TokenVersion)) {
		return gen.TokenResponse{}, ErrInvalidCredentials
	}
	if err != nil {
		return gen.TokenResponse{}, err
	}
	tokens, err := h.issueTokens(ctx, u, old.Family)
	if err != nil {
		return gen.TokenResponse{}, err
	}
	// The same token presented at once by someone else found it spent and
	// revoked the family — maybe before the new token was stored, out of that
	// revocation's reach. Looked at after storing it, the family says so.
	if revoked, err := h.store.FamilyRevoked(ctx, old.Family); err != nil || revoked {
		if err == nil {
			err = h.store.RevokeTokenFamily(ctx, old.Family)
		}
		if err == nil {
			err = ErrInvalidCredentials
		}
		return gen.TokenResponse{}, err
	}
	return tokens, nil
}

// Logout revokes a refresh token and its family.
func (h *Handler) Logout(ctx context.Context, req gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	if err := h.store.RevokeRefreshToken(ctx, auth.HashRefreshToken(req.Body.RefreshToken)); err != nil {
		return nil, err
	}
	return gen.Logout204Response{}, nil
}

// GetHealth answers while the process runs.
func (h *Handler) GetHealth(context.Context, gen.GetHealthRequestObject) (gen.GetHealthResponseObject, error) {
	return gen.GetHealth200JSONResponse{Status: gen.Ok}, nil
}

// readinessTimeout is how long the database gets to answer a readiness ping.
const readinessTimeout = time.Second

// GetReadiness answers when the database does.
func (h *Handler) GetReadiness(ctx context.Context, _ gen.GetReadinessRequestObject) (gen.GetReadinessResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		// Whatever the reason, the database is not serving: not ready.
		return nil, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return gen.GetReadiness200JSONResponse{Status: gen.Ok}, nil
}
