package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Writes that several resources share: reads by id, updates conditional on a
// revision, and deletes and inserts that keep references intact without
// multi-document transactions (which the embedded engine lacks).
//
// Every condition beyond "_id equals X" is evaluated differently per engine,
// for the same result:
//   - On MongoDB the condition is part of the write's filter, so the server
//     checks and writes atomically, whichever process sends it.
//   - The bundled engine (FerretDB) only uses an index for a filter that is
//     exactly {_id: X}, and applies an update as read-modify-write without a
//     transaction. So the store filters by _id alone and checks the condition
//     in Go under lockDoc, which serialises this process's writes.
//   - When the bundled engine runs as a server of its own (crm engine), other
//     API processes write to it too. Then each step of a record from one
//     revision to the next is also claimed in the claims collection, whose
//     unique _id lets exactly one process make it.

const fieldDeletingAt = "deleting_at"

// deletionMarkTTL bounds how long a deletion in progress blocks new references
// to a record: a mark older than this was left by a process that stopped half-way
// and no longer counts.
const deletionMarkTTL = time.Minute

// ReferencedError says which records still refer to the one being deleted.
type ReferencedError struct {
	By string // collection holding the references, e.g. "interactions"
}

func (e *ReferencedError) Error() string        { return "store: still referenced by " + e.By }
func (e *ReferencedError) Is(target error) bool { return target == ErrReferenced }

// ErrCascadeRefused: a cascading delete would take records with it that the
// caller may not delete; nothing was deleted.
var ErrCascadeRefused = errors.New("store: the cascade would delete records the caller may not delete")

// ErrCascadeRefusedPartly is ErrCascadeRefused found once the cascade had
// begun: another user's record came to refer to the record meanwhile. The
// record and the others' records stay; the caller's own are deleted.
var ErrCascadeRefusedPartly = fmt.Errorf("%w, after deleting the caller's own", ErrCascadeRefused)

// ErrMissingReference: a record refers to another that does not exist (or is
// being deleted).
var ErrMissingReference = errors.New("store: referenced record does not exist")

// MissingReferenceError names the field whose referenced record is missing.
type MissingReferenceError struct {
	Field  string // e.g. "customer_id"
	Record string // the kind of record it refers to: "customer", "user"
}

func (e *MissingReferenceError) Error() string {
	return "store: the " + e.Record + " that " + e.Field + " refers to does not exist"
}
func (e *MissingReferenceError) Is(target error) bool { return target == ErrMissingReference }

// reference is a field in coll that holds the id of another record.
type reference struct {
	coll  collection
	field string
}

// outgoing is one reference a record makes: field holds id, a record of coll.
type outgoing struct {
	coll  collection
	id    bson.ObjectID
	field string
}

// Changes that change nothing: each resource's Changes type has an Effective
// method that drops the fields set to what the record already holds, so that
// a write that would change nothing is skipped. A client that syncs by
// updated_since then does not read its own no-op writes back as news, and
// the record keeps its revision and ETag.

// dropSame clears *change when it would set the value the record holds.
func dropSame[T comparable](change **T, current T) {
	if *change != nil && **change == current {
		*change = nil
	}
}

// changes collects the members an update sets and removes.
type changes struct{ set, unset bson.D }

// text sets field to *v; an empty string removes the field; nil leaves it.
func (c *changes) text(field string, v *string) {
	switch {
	case v == nil:
	case *v == "":
		c.remove(field)
	default:
		c.set = append(c.set, bson.E{Key: field, Value: *v})
	}
}

// value sets field to v.
func (c *changes) value(field string, v any) { c.set = append(c.set, bson.E{Key: field, Value: v}) }

// remove removes field.
func (c *changes) remove(field string) { c.unset = append(c.unset, bson.E{Key: field, Value: ""}) }

// fields names every member the changes touch.
func (c *changes) fields() []string {
	names := make([]string, 0, len(c.set)+len(c.unset))
	for _, e := range append(append(bson.D{}, c.set...), c.unset...) {
		names = append(names, e.Key)
	}
	return names
}

// getByID decodes the document with id into out, or returns ErrNotFound.
func (s *Store) getByID(ctx context.Context, coll collection, id bson.ObjectID, out any) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	return translate(coll.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}).Decode(out))
}

// revisionCondition matches a document at revision rev. Documents written by the
// original CRM have no revision field; they are at revision 0.
func revisionCondition(rev int64) bson.E {
	if rev == 0 {
		return bson.E{Key: fieldRevision, Value: bson.D{{Key: "$exists", Value: false}}}
	}
	return bson.E{Key: fieldRevision, Value: rev}
}

// stateOf reads what the conditional writes check: the revision and any
// deletion mark. ErrNotFound when the document does not exist.
func (s *Store) stateOf(ctx context.Context, coll collection, id bson.ObjectID) (rev int64, deleting *time.Time, err error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var state struct {
		Revision   int64      `bson:"revision"`
		DeletingAt *time.Time `bson:"deleting_at"`
	}
	opts := options.FindOne().SetProjection(bson.D{{Key: fieldRevision, Value: 1}, {Key: fieldDeletingAt, Value: 1}})
	if err := coll.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}, opts).Decode(&state); err != nil {
		return 0, nil, translate(err)
	}
	return state.Revision, state.DeletingAt, nil
}

// atRevision prepares a write to id that must only happen at revision rev. It
// returns the filter to write with, the revision to write, and a release
// function to call once the write is done (or abandoned). On the bundled engine
// it checks the revision itself (the caller holds lockDoc) and filters by _id
// alone; see the comment at the top.
func (s *Store) atRevision(ctx context.Context, coll collection, id bson.ObjectID, rev int64) (filter bson.D, next int64, release func(), err error) {
	nothing := func() {}
	if !s.filterByIDOnly {
		return bson.D{{Key: fieldID, Value: id}, revisionCondition(rev)}, rev + 1, nothing, nil
	}
	current, _, err := s.stateOf(ctx, coll, id)
	if err != nil {
		return nil, 0, nil, err
	}
	if current != rev {
		return nil, 0, nil, ErrStale
	}
	filter = bson.D{{Key: fieldID, Value: id}}
	if !s.sharedEngine {
		return filter, rev + 1, nothing, nil
	}
	next, release, err = s.claimStep(ctx, coll.Name()+"/"+id.Hex(), rev)
	if err != nil {
		return nil, 0, nil, err
	}
	// Another process may have written between the read above and the claim,
	// and given its claim back already: only a record still at rev is ours.
	if current, _, err = s.stateOf(ctx, coll, id); err != nil || current != rev {
		release()
		if err == nil {
			err = ErrStale
		}
		return nil, 0, nil, err
	}
	return filter, next, release, nil
}

// claimTTL is how long a claimed step may take to be written. A claim is given
// back once its write is done; one older than this was left by a process that
// died before writing, and the next writer skips past it to a revision of its
// own.
const claimTTL = 10 * time.Second

// claimStep claims the step of a record (key) from revision rev to the next
// in the claims collection: of all processes trying, exactly one succeeds, the
// others get ErrStale. It returns the revision claimed and how to give the claim
// back.
func (s *Store) claimStep(ctx context.Context, key string, rev int64) (int64, func(), error) {
	for next := rev + 1; next <= rev+5; next++ {
		claim := key + "/" + strconv.FormatInt(next, 10)
		err := s.claim(ctx, claim)
		if err == nil {
			return next, func() { _ = s.unclaim(context.WithoutCancel(ctx), claim) }, nil
		}
		if !errors.Is(err, ErrDuplicate) {
			return 0, nil, err
		}
		stale, err := s.claimIsStale(ctx, claim)
		if err != nil {
			return 0, nil, err
		}
		if !stale {
			return 0, nil, ErrStale // another process is writing this step
		}
	}
	return 0, nil, ErrStale
}

// claim inserts the claim document key; ErrDuplicate if it exists.
func (s *Store) claim(ctx context.Context, key string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.claims.InsertOne(ctx, bson.D{{Key: fieldID, Value: key}, {Key: fieldCreatedAt, Value: now()}})
	return translate(err)
}

func (s *Store) unclaim(ctx context.Context, key string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.claims.DeleteOne(ctx, bson.D{{Key: fieldID, Value: key}})
	return translate(err)
}

func (s *Store) claimIsStale(ctx context.Context, key string) (bool, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var c struct {
		CreatedAt time.Time `bson:"created_at"`
	}
	err := translate(s.claims.FindOne(ctx, bson.D{{Key: fieldID, Value: key}}).Decode(&c))
	if errors.Is(err, ErrNotFound) {
		return false, nil // given back meanwhile; the caller's read is stale anyway
	}
	return err == nil && time.Since(c.CreatedAt) > claimTTL, err
}

// notMatched explains why a conditional write to id matched nothing: the
// document is gone (ErrNotFound) or at another revision (ErrStale).
func (s *Store) notMatched(ctx context.Context, coll collection, id bson.ObjectID) error {
	if _, _, err := s.stateOf(ctx, coll, id); err != nil {
		return err
	}
	return ErrStale
}

// updateAtRevision sets and unsets fields of the document id if it is at
// revision rev, stamps updated_at, bumps the revision, and decodes the document
// as it is after the update into out.
func (s *Store) updateAtRevision(ctx context.Context, coll collection, id bson.ObjectID, rev int64, ch changes, out any) error {
	_, err := s.update(ctx, coll, id, rev, ch, options.After, out)
	return err
}

// update is updateAtRevision that can also return the document as it was
// (which), and returns the changes as written: ch with the new updated_at
// and revision.
func (s *Store) update(ctx context.Context, coll collection, id bson.ObjectID, rev int64, ch changes, which options.ReturnDocument, out any) (changes, error) {
	defer s.lockDoc(id)()
	filter, next, release, err := s.atRevision(ctx, coll, id, rev)
	if err != nil {
		return changes{}, err
	}
	defer release()
	ch.set = append(bson.D{{Key: fieldUpdatedAt, Value: now()}, {Key: fieldRevision, Value: next}}, ch.set...)
	update := bson.D{{Key: "$set", Value: ch.set}}
	if len(ch.unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: ch.unset})
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err = coll.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(which)).Decode(out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return changes{}, s.notMatched(ctx, coll, id)
	}
	return ch, translate(err)
}

// applied is doc with the changes made: what an update of doc wrote.
func applied(doc bson.Raw, ch changes) (bson.Raw, error) {
	var fields bson.D
	if err := bson.Unmarshal(doc, &fields); err != nil {
		return nil, err
	}
	changed := ch.fields()
	fields = slices.DeleteFunc(fields, func(e bson.E) bool { return slices.Contains(changed, e.Key) })
	return bson.Marshal(append(fields, ch.set...))
}

// updateReferencing is updateAtRevision for a change that makes the document
// refer to other records (refs): they must exist before the update and still
// exist after it, or else the change is undone. It is the update-side mirror
// of deleteReferenced, like insertReferencing.
//
// The document is answered as this update wrote it, also when a delete took
// it right after (the cascade of the record it came to refer to, or its own
// delete): the update came first, and succeeded.
func (s *Store) updateReferencing(ctx context.Context, coll collection, id bson.ObjectID, rev int64, ch changes, refs []outgoing, out any) error {
	if len(refs) == 0 {
		return s.updateAtRevision(ctx, coll, id, rev, ch, out)
	}
	if err := s.checkReferences(ctx, refs); err != nil {
		return err
	}
	var before bson.Raw
	written, err := s.update(ctx, coll, id, rev, ch, options.Before, &before)
	if err != nil {
		return err
	}
	var deleted error
	if err := s.checkReferences(ctx, refs); err != nil {
		// A referenced record was deleted meanwhile: put every changed field
		// back as it was.
		deleted = s.restore(ctx, coll, id, before, ch.fields())
		if !errors.Is(deleted, ErrNotFound) {
			return cmp.Or(deleted, err)
		}
	} else {
		_, _, deleted = s.stateOf(ctx, coll, id)
	}
	if errors.Is(deleted, ErrNotFound) {
		// Deleted right after the update, by the cascade of the record it came
		// to refer to: the cascade may not have known of it, so this leaves
		// the trace (one, whoever writes it first).
		s.recordDeletions(ctx, coll, []bson.ObjectID{id})
	}
	after, err := applied(before, written)
	if err != nil {
		return err
	}
	return bson.Unmarshal(after, out)
}

// restore puts fields of the document id back as they were in before, at
// whatever revision the document is now: the undo of a change that had to be
// taken back.
func (s *Store) restore(ctx context.Context, coll collection, id bson.ObjectID, before bson.Raw, fields []string) error {
	var back changes
	for _, f := range fields {
		if v, err := before.LookupErr(f); err == nil {
			back.value(f, v)
		} else {
			back.remove(f)
		}
	}
	current, _, err := s.stateOf(ctx, coll, id)
	if err != nil {
		return err
	}
	var ignored bson.Raw
	return s.updateAtRevision(context.WithoutCancel(ctx), coll, id, current, back, &ignored)
}

// deleteReferenced deletes the document id at revision rev unless records in
// refs still refer to it: then it returns a *ReferencedError, or, with cascade,
// deletes those records first. With cascade and a non-nil keep filter,
// referring records that match keep must not be deleted: if there are any,
// nothing is deleted and the error is ErrCascadeRefused (or, when one comes
// to refer to id during the cascade, ErrCascadeRefusedPartly). Every record
// deleted leaves a trace for sync jobs (see recordDeletions).
//
// Without transactions the check and the delete cannot be one step, so the
// record is first marked as being deleted and the references are looked for
// after that; insertReferencing does the mirror image (insert, then look at the
// mark). Whichever runs second sees the other, so no reference to a deleted
// record survives. Whenever the record is not deleted in the end (refused, or
// any error, a cascade past its deadline included), the mark is taken back,
// with a context of its own: a mark left behind would make every new
// reference to the record wait and be refused as missing until
// deletionMarkTTL. A cascade interrupted half-way leaves the record in place,
// and sending the delete again finishes it.
func (s *Store) deleteReferenced(ctx context.Context, coll collection, id bson.ObjectID, rev int64, refs []reference, cascade bool, keep bson.D, afterMark func(context.Context) error) (err error) {
	defer s.lockDoc(id)()
	filter, _, release, err := s.atRevision(ctx, coll, id, rev)
	if err != nil {
		return err
	}
	defer release()
	opCtx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := coll.UpdateOne(opCtx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: fieldDeletingAt, Value: now()}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return s.notMatched(ctx, coll, id)
	}
	deleted := false
	defer func() {
		if deleted {
			return
		}
		// The record stays as it was. Its caller's context may be the very
		// reason (cancelled, or past its deadline), so the unmark has its own.
		unmarkCtx, cancel := s.opContext(context.WithoutCancel(ctx))
		defer cancel()
		_, unmarkErr := coll.UpdateOne(unmarkCtx, bson.D{{Key: fieldID, Value: id}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: fieldDeletingAt, Value: ""}}}})
		if unmarkErr = translate(unmarkErr); unmarkErr != nil {
			s.log.Warn("a refused or failed delete left its mark", "record", coll.record(), "id", id.Hex(), "error", err, "unmark_error", unmarkErr)
			err = unmarkErr
		}
	}()
	if afterMark != nil {
		if err := afterMark(opCtx); err != nil {
			return err
		}
	}

	// Which references stop the delete: any, without cascade; those to keep, with.
	var blocking bson.D
	switch {
	case !cascade:
		blocking = bson.D{}
	case keep != nil:
		blocking = keep
	}
	if blocking != nil {
		for _, ref := range refs {
			found, err := exists(opCtx, ref.coll, append(bson.D{{Key: ref.field, Value: id}}, blocking...))
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if cascade {
				return ErrCascadeRefused
			}
			return &ReferencedError{By: ref.coll.Name()}
		}
	}
	if cascade {
		// A cascade deletes any number of records, which on the bundled
		// engine means reading the whole collection: it gets more time than
		// one operation, still well within the server's write timeout.
		cascadeCtx, cancel := context.WithTimeout(ctx, cascadeTimeoutFactor*s.timeout)
		defer cancel()
		for _, ref := range refs {
			if keep == nil {
				if err := s.cascadeDelete(cascadeCtx, ref, id, nil); err != nil {
					return err
				}
				continue
			}
			// The check above and this delete are not one step: a record to
			// keep may have come to refer to id, or one referring to it been
			// handed to another user, in between. The delete spares those,
			// and finding one afterwards refuses the cascade, which leaves the
			// record in place with what was deleted gone, as an interrupted
			// cascade does.
			if err := s.cascadeDelete(cascadeCtx, ref, id, bson.D{{Key: "$nor", Value: bson.A{keep}}}); err != nil {
				return err
			}
			found, err := exists(cascadeCtx, ref.coll, append(bson.D{{Key: ref.field, Value: id}}, keep...))
			if err != nil {
				return err
			}
			if found {
				return ErrCascadeRefusedPartly
			}
		}
	}
	// A fresh deadline: the cascade may have used up the first one.
	delCtx, cancel := s.opContext(ctx)
	defer cancel()
	gone, err := coll.DeleteOne(delCtx, bson.D{{Key: fieldID, Value: id}})
	if err != nil {
		return translate(err)
	}
	deleted = true
	if gone.DeletedCount == 1 {
		s.recordDeletions(ctx, coll, []bson.ObjectID{id})
	}
	return nil
}

// cascadeTimeoutFactor times the store's timeout bounds a cascading delete:
// 30 s by default, half the HTTP server's write timeout.
const cascadeTimeoutFactor = 6

// exists reports whether any document of coll matches filter.
func exists(ctx context.Context, coll collection, filter bson.D) (bool, error) {
	err := coll.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: fieldID, Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, translate(err)
}

// checkReferences fails with a *MissingReferenceError for each record
// referred to that does not exist or is being deleted (joined, when there
// are several), so that one answer names every missing reference.
func (s *Store) checkReferences(ctx context.Context, refs []outgoing) error {
	var missing []error
	for _, r := range refs {
		err := s.checkReference(ctx, r)
		if _, ok := errors.AsType[*MissingReferenceError](err); !ok && err != nil {
			return err
		}
		if err != nil {
			missing = append(missing, err)
		}
	}
	return errors.Join(missing...)
}

// checkReference fails with a *MissingReferenceError unless the record r
// refers to exists and is not being deleted. A record marked as being
// deleted is waited for, up to the store's timeout: the delete is refused
// when other records still refer to the record, and a reference refused
// meanwhile would have been refused for nothing.
func (s *Store) checkReference(ctx context.Context, r outgoing) error {
	missing := &MissingReferenceError{Field: r.field, Record: r.coll.record()}
	deadline := time.Now().Add(s.timeout)
	for {
		_, deleting, err := s.stateOf(ctx, r.coll, r.id)
		if errors.Is(err, ErrNotFound) {
			return missing
		}
		if err != nil {
			return err
		}
		if deleting == nil || time.Since(*deleting) >= deletionMarkTTL {
			return nil // not being deleted, or by a process that stopped half-way
		}
		if time.Now().After(deadline) {
			return missing
		}
		select {
		case <-ctx.Done():
			return translate(ctx.Err())
		case <-time.After(deletionPoll):
		}
	}
}

// deletionPoll is how often a reference to a record being deleted looks
// again whether the delete went through.
const deletionPoll = 5 * time.Millisecond

// insertReferencing inserts doc (whose id is id) into coll if every record it
// refers to exists: checked before the insert, to refuse early, and after it, to
// catch a delete that ran in between (see deleteReferenced); then the insert is
// undone.
func (s *Store) insertReferencing(ctx context.Context, coll collection, id bson.ObjectID, doc any, refs []outgoing) error {
	if err := s.checkReferences(ctx, refs); err != nil {
		return err
	}
	opCtx, cancel := s.opContext(ctx)
	defer cancel()
	if _, err := coll.InsertOne(opCtx, doc); err != nil {
		return translate(err)
	}
	if err := s.checkReferences(ctx, refs); err != nil {
		// Undone; a sync job may have listed it meanwhile, so it leaves a trace.
		if undone, undoErr := coll.DeleteOne(context.WithoutCancel(opCtx), bson.D{{Key: fieldID, Value: id}}); undoErr == nil && undone.DeletedCount == 1 {
			s.recordDeletions(ctx, coll, []bson.ObjectID{id})
		}
		return err
	}
	return nil
}

// claimMarker inserts the marker document name into the meta collection; of
// concurrent claims exactly one succeeds and the others get ErrDuplicate. A
// marker older than staleAfter (its claimant never finished) is replaced.
func (s *Store) claimMarker(ctx context.Context, name string, staleAfter time.Duration) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	claim := func() error {
		_, err := s.meta.InsertOne(ctx, bson.D{{Key: fieldID, Value: name}, {Key: fieldCreatedAt, Value: now()}})
		return translate(err)
	}
	err := claim()
	if !errors.Is(err, ErrDuplicate) {
		return err
	}
	// Replace the marker only if it is stale: a fresh one's claimant is still
	// at work.
	var marker struct {
		CreatedAt time.Time `bson:"created_at"`
	}
	err = translate(s.meta.FindOne(ctx, bson.D{{Key: fieldID, Value: name}}).Decode(&marker))
	if errors.Is(err, ErrNotFound) {
		return claim() // released meanwhile
	}
	if err != nil {
		return err
	}
	if time.Since(marker.CreatedAt) < staleAfter {
		return ErrDuplicate
	}
	// Only the stale marker read above, not by _id alone: another caller that
	// also found it stale may have replaced it by its own claim meanwhile, and
	// deleting that would let both callers claim.
	if err := s.deleteIfCreatedAt(ctx, s.meta, name, marker.CreatedAt); err != nil {
		return err
	}
	return claim()
}

// deleteIfCreatedAt deletes the document key of coll only if it is the one
// created at created: a document read as expired or stale may have been
// replaced meanwhile by another caller's fresh one, which must stay.
func (s *Store) deleteIfCreatedAt(ctx context.Context, coll collection, key string, created time.Time) error {
	_, err := s.writeIfCreatedAt(ctx, coll, key, created, func(filter bson.D) (bool, error) {
		res, err := coll.DeleteOne(ctx, filter)
		return err == nil && res.DeletedCount == 1, err
	})
	return err
}

// writeIfCreatedAt runs write with a filter that matches the document key of
// coll only while it is the one created at created, and says whether write
// reached it. On MongoDB the creation time is part of the filter; on the
// bundled engine the filter is _id alone (see the top of this file) and the
// time is compared here, under the key's lock.
func (s *Store) writeIfCreatedAt(ctx context.Context, coll collection, key string, created time.Time, write func(filter bson.D) (bool, error)) (bool, error) {
	defer s.lockKey([]byte(key))()
	filter := bson.D{{Key: fieldID, Value: key}}
	if !s.filterByIDOnly {
		filter = append(filter, bson.E{Key: fieldCreatedAt, Value: created})
	} else {
		var current struct {
			CreatedAt time.Time `bson:"created_at"`
		}
		err := translate(coll.FindOne(ctx, filter).Decode(&current))
		if errors.Is(err, ErrNotFound) || (err == nil && !current.CreatedAt.Equal(created)) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	ok, err := write(filter)
	return ok, translate(err)
}

// releaseMarker deletes the marker document name.
func (s *Store) releaseMarker(ctx context.Context, name string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.meta.DeleteOne(ctx, bson.D{{Key: fieldID, Value: name}})
	return translate(err)
}

// fillTimestamps gives a document written without timestamps (by the original
// CRM) its creation time from its ObjectID, and that as its update time.
func fillTimestamps(id bson.ObjectID, created, updated *time.Time) {
	if created.IsZero() {
		*created = id.Timestamp().UTC()
	}
	if updated.IsZero() {
		*updated = *created
	}
}
