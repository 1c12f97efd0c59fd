// Tests of the refresh tokens: create, exchange once, reuse detection (which
// revokes the whole family), expired/revoked/unknown tokens, revoking a family
// or all of a user's tokens, the sweep of expired tokens, and concurrent
// exchanges of one token.
package store

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// mustCreateToken stores a refresh token that expires after ttl (negative: expired).
func mustCreateToken(t *testing.T, s *Store, hash string, user bson.ObjectID, family string, ttl time.Duration) *RefreshToken {
	t.Helper()
	tok := &RefreshToken{Hash: hash, UserID: user, Family: family, ExpiresAt: time.Now().Add(ttl).UTC().Truncate(time.Millisecond)}
	if err := s.CreateRefreshToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateRefreshToken(%s): %v", hash, err)
	}
	return tok
}

func TestUseRefreshTokenOnce(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	user := bson.NewObjectID()
	before := time.Now().Truncate(time.Millisecond)
	tok := mustCreateToken(t, s, "hash-1", user, "fam-1", time.Hour)
	if tok.CreatedAt.Before(before) || tok.CreatedAt.After(time.Now()) {
		t.Errorf("CreatedAt %v not set to now", tok.CreatedAt)
	}
	sibling := mustCreateToken(t, s, "hash-2", user, "fam-1", time.Hour)
	otherFamily := mustCreateToken(t, s, "hash-3", user, "fam-2", time.Hour)

	got, err := s.UseRefreshToken(ctx, "hash-1")
	if err != nil {
		t.Fatalf("first UseRefreshToken: %v", err)
	}
	if got.Hash != "hash-1" || got.UserID != user || got.Family != "fam-1" || got.UsedAt == nil || got.RevokedAt != nil ||
		!got.ExpiresAt.Equal(tok.ExpiresAt) || !got.CreatedAt.Equal(tok.CreatedAt) {
		t.Errorf("UseRefreshToken = %+v", got)
	}
	if raw := rawDoc(t, s.refreshTokens.Collection, "hash-1"); raw["used_at"] == nil {
		t.Error("used_at not stored")
	}

	// Presented again: reuse, and the whole family is revoked.
	if _, err := s.UseRefreshToken(ctx, "hash-1"); !errors.Is(err, ErrTokenReused) {
		t.Fatalf("second UseRefreshToken = %v, want ErrTokenReused", err)
	}
	for _, h := range []string{tok.Hash, sibling.Hash} {
		if raw := rawDoc(t, s.refreshTokens.Collection, h); raw["revoked_at"] == nil {
			t.Errorf("token %s of the reused family is not revoked", h)
		}
	}
	if _, err := s.UseRefreshToken(ctx, sibling.Hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("UseRefreshToken of a sibling after reuse = %v, want ErrNotFound", err)
	}
	// Once revoked, the reused token is simply not found.
	if _, err := s.UseRefreshToken(ctx, "hash-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("third UseRefreshToken = %v, want ErrNotFound", err)
	}
	// Another family of the same user is untouched.
	if _, err := s.UseRefreshToken(ctx, otherFamily.Hash); err != nil {
		t.Errorf("token of another family after reuse: %v", err)
	}
}

func TestUseRefreshTokenRefused(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	user := bson.NewObjectID()
	mustCreateToken(t, s, "expired", user, "f-exp", -time.Minute)
	mustCreateToken(t, s, "revoked", user, "f-rev", time.Hour)
	if err := s.RevokeTokenFamily(ctx, "f-rev"); err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{"expired", "revoked", "unknown", ""} {
		if _, err := s.UseRefreshToken(ctx, hash); !errors.Is(err, ErrNotFound) {
			t.Errorf("UseRefreshToken(%q) = %v, want ErrNotFound", hash, err)
		}
	}
	// A refused exchange does not mark the token used.
	if raw := rawDoc(t, s.refreshTokens.Collection, "expired"); raw["used_at"] != nil || raw["revoked_at"] != nil {
		t.Errorf("expired token after a refused exchange: %v", raw)
	}

	// The same hash cannot be stored twice.
	err := s.CreateRefreshToken(ctx, &RefreshToken{Hash: "expired", UserID: user, Family: "f", ExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, ErrDuplicate) {
		t.Errorf("CreateRefreshToken with an existing hash = %v, want ErrDuplicate", err)
	}
}

func TestRevokeRefreshToken(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	user := bson.NewObjectID()
	mustCreateToken(t, s, "a1", user, "fam-a", time.Hour)
	mustCreateToken(t, s, "a2", user, "fam-a", time.Hour)
	mustCreateToken(t, s, "b1", user, "fam-b", time.Hour)

	if err := s.RevokeRefreshToken(ctx, "a1"); err != nil {
		t.Fatalf("RevokeRefreshToken: %v", err)
	}
	for _, h := range []string{"a1", "a2"} {
		if _, err := s.UseRefreshToken(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("UseRefreshToken(%s) after its family was revoked = %v, want ErrNotFound", h, err)
		}
	}
	if _, err := s.UseRefreshToken(ctx, "b1"); err != nil {
		t.Errorf("token of another family: %v", err)
	}
	// Revoking again keeps the first revocation time.
	first := rawDoc(t, s.refreshTokens.Collection, "a1")["revoked_at"]
	pause()
	if err := s.RevokeRefreshToken(ctx, "a2"); err != nil {
		t.Fatalf("second RevokeRefreshToken: %v", err)
	}
	if again := rawDoc(t, s.refreshTokens.Collection, "a1")["revoked_at"]; again != first {
		t.Errorf("revoked_at changed from %v to %v on a second revocation", first, again)
	}
	// Signing out with an unknown token, or twice, is fine.
	for _, h := range []string{"unknown", "a1", ""} {
		if err := s.RevokeRefreshToken(ctx, h); err != nil {
			t.Errorf("RevokeRefreshToken(%q) = %v, want nil", h, err)
		}
	}
}

func TestRevokeUserTokens(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	alice, bob := bson.NewObjectID(), bson.NewObjectID()
	mustCreateToken(t, s, "alice-1", alice, "fa1", time.Hour)
	mustCreateToken(t, s, "alice-2", alice, "fa2", time.Hour)
	mustCreateToken(t, s, "bob-1", bob, "fb1", time.Hour)

	if err := s.RevokeUserTokens(ctx, alice); err != nil {
		t.Fatalf("RevokeUserTokens: %v", err)
	}
	for _, h := range []string{"alice-1", "alice-2"} {
		if _, err := s.UseRefreshToken(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("UseRefreshToken(%s) after RevokeUserTokens = %v, want ErrNotFound", h, err)
		}
	}
	if _, err := s.UseRefreshToken(ctx, "bob-1"); err != nil {
		t.Errorf("another user's token: %v", err)
	}
	if err := s.RevokeUserTokens(ctx, bson.NewObjectID()); err != nil {
		t.Errorf("RevokeUserTokens of a user without tokens: %v", err)
	}
}

func TestDeleteExpiredRefreshTokens(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	user := bson.NewObjectID()
	cutoff := time.Now().UTC().Truncate(time.Millisecond)
	for _, tc := range []struct {
		hash    string
		expires time.Time
	}{
		{"long-gone", cutoff.Add(-48 * time.Hour)},
		{"just-gone", cutoff.Add(-time.Millisecond)},
		{"at-cutoff", cutoff},
		{"valid", cutoff.Add(time.Hour)},
	} {
		if err := s.CreateRefreshToken(ctx, &RefreshToken{Hash: tc.hash, UserID: user, Family: "f", ExpiresAt: tc.expires}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpiredRefreshTokens(ctx, cutoff)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredRefreshTokens = %d, %v; want 2 (those expiring before the cutoff)", n, err)
	}
	for hash, want := range map[string]int64{"long-gone": 0, "just-gone": 0, "at-cutoff": 1, "valid": 1} {
		if got := countDocs(t, s.refreshTokens.Collection, bson.D{{Key: "_id", Value: hash}}); got != want {
			t.Errorf("token %s: %d left, want %d", hash, got, want)
		}
	}
	if n, err := s.DeleteExpiredRefreshTokens(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("second sweep = %d, %v; want 0", n, err)
	}
}

func TestUseRefreshTokenConcurrent(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	user := bson.NewObjectID()
	mustCreateToken(t, s, "contested", user, "fam", time.Hour)
	mustCreateToken(t, s, "sibling", user, "fam", time.Hour)
	const n = 16
	errs := runConcurrently(n, func(int) error {
		_, err := s.UseRefreshToken(t.Context(), "contested")
		return err
	})
	ok, reused, other := tallyErrors(errs, ErrTokenReused)
	// The first loser revokes the family, so later losers may find the token
	// revoked (ErrNotFound); what matters is that exactly one exchange wins.
	var notFound int
	for _, err := range other {
		if errors.Is(err, ErrNotFound) {
			notFound++
		} else {
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || reused < 1 || reused+notFound != n-1 {
		t.Fatalf("%d exchanges succeeded, %d reused, %d not found; want exactly 1 success", ok, reused, notFound)
	}
	if _, err := s.UseRefreshToken(t.Context(), "sibling"); !errors.Is(err, ErrNotFound) {
		t.Errorf("sibling after the contested exchange = %v, want ErrNotFound (family revoked)", err)
	}
}
