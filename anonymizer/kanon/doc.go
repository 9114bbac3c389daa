// Package kanon makes the stored rows k-anonymous over the combination of
// quasi-identifiers they carry: every combination of app version (with
// build and SDK version), device class, device model, OS name and
// version, locale, country and region stored for an app and UTC day is
// shared by the rows of at least k distinct consents. The property holds
// over what is stored, not only over what one replica has seen.
//
// A streaming collector can only promise that by deciding a row's stored
// form once enough consents share it (the CASTLE family of stream
// k-anonymizers: hold tuples, publish a cluster once it holds k
// individuals or its delay expires; a published cluster may only grow):
//
//   - The anonymizer gives every row a member key, a keyed hash of its
//     consent under the salt of the event's day (pipeline.Common.Member).
//     It links nothing across days and is never stored in the public
//     tables.
//   - A Router knows the combinations published exactly for each app and
//     day. Rows of those go straight to the public tables; the others are
//     held in private tables, with their member key, which only the
//     collector reads.
//   - A release pass (Releaser, every 30 s on one replica at a time)
//     publishes every held combination whose rows come from at least k
//     consents. Rows held longer than the delay (an hour by default) walk
//     up a Hierarchy, which generalizes the least useful attribute first,
//     and are published at the finest level whose class is published or
//     reaches k consents; at the latest at the top level, where every
//     quasi-identifier is unknown and a row says no more than "a user of
//     this app that day". The pass logs every class it publishes before
//     moving rows, so a pass that fails half-way is completed as decided.
//
// docs/privacy.md explains, with a worked example, what an analyst can and
// cannot single out.
package kanon
