package api

import (
	"context"
	"time"

	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// ListDeletions lists the records deleted, oldest deletion first: what a sync
// job removes on its side. Everyone signed in reads every record, so everyone
// may learn which are gone.
func (h *Handler) ListDeletions(ctx context.Context, req gen.ListDeletionsRequestObject) (gen.ListDeletionsResponseObject, error) {
	prm := req.Params
	if prm.Since != nil && time.Since(*prm.Since) > store.DeletionRetention {
		// Deletions before the oldest one kept are gone: the job would miss them.
		return nil, invalidParameter("since", "is older than the 90 days that deletions are kept: read every record again instead")
	}
	q := listQuery{resource: "deletions", sort: "deleted_at", limit: prm.Limit, cursor: prm.Cursor, total: prm.IncludeTotal}
	opts, err := h.options(q)
	if err != nil {
		return nil, err
	}
	page, err := h.store.ListDeletions(ctx, store.DeletionFilter{Records: enumValues(deref(prm.Record)), Since: prm.Since}, opts)
	if err != nil {
		return nil, err
	}
	out := gen.DeletionList{Data: make([]gen.Deletion, len(page.Items))}
	for i, d := range page.Items {
		out.Data[i] = gen.Deletion{Record: gen.RecordKind(d.Record), Id: d.RecordID.Hex(), DeletedAt: d.DeletedAt}
	}
	lp := pageOf(ctx, h, q, page)
	out.NextCursor, out.Total = lp.next, lp.total
	return gen.ListDeletions200JSONResponse{Body: out, Headers: gen.ListDeletions200ResponseHeaders{Link: lp.link}}, nil
}
