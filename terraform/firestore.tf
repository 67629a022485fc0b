# The per-image state (images/{id}), cleanup's per-step cursors (cleanup/{step}), and the end users'
# assets, quota counters and signed-URL tickets (assets, owners, tickets): a named Firestore database
# in Native mode, named by shared/core/topology.json (firestore.database.name, the default of
# FIRESTORE_DATABASE in shared/config.ts), with the composite indexes the topology lists for
# cleanup's, reprocess's and upload's queries (assets of an owner, newest first), and its TTL
# policies (tickets expire by themselves). The functions reach it with roles/datastore.user
# conditioned to this database (iam.tf).
#
# Keeping the data:
# - delete_protection_state: Firestore itself refuses to delete the database while it is on.
# - deletion_policy = "DELETE": `terraform destroy` (or a replacement) tries to delete it, and the
#   provider stops with "Cannot delete Firestore database …: Delete Protection is enabled" while
#   delete protection is on (its delete reads the refreshed state: hashicorp/google 6.50.0 and
#   7.x, google/services/firestore/resource_firestore_database.go). The provider's default,
#   ABANDON, would instead drop the database from the state and report success, leaving it
#   behind (hashicorp/terraform-provider-google#22535), and the next apply would fail on a
#   database that already exists. To really delete it, turn delete protection off first
#   (terraform/README.md, "The Firestore database").

resource "google_firestore_database" "this" {
  project     = var.project_id
  name        = local.topology.firestore.database.name
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  # PESSIMISTIC, Firestore's default and recommended mode: the functions use the server client
  # library (@google-cloud/firestore), and the server client libraries use pessimistic
  # concurrency control (transactions lock the documents they read); the mobile and web SDKs
  # emulate optimistic concurrency whatever the setting (Firestore docs, "Data contention in transactions":
  # https://firebase.google.com/docs/firestore/transaction-data-contention). Written out so that
  # a change of the API's default cannot change it.
  concurrency_mode = "PESSIMISTIC"

  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery_enablement
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "DELETE"

  depends_on = [google_project_service.this]
}

locals {
  firestore_location = var.firestore_location == null ? var.region : var.firestore_location

  # One composite index per entry of the topology, keyed by its collection and fields, which
  # identify an index (Firestore cannot change an index: a different key is a different index).
  firestore_indexes = {
    for index in local.topology.firestore.indexes :
    "${index.collection}(${join(", ", [for field in index.fields : "${field[0]} ${field[1]}"])})" => index
  }
}

# Composite indexes build for a few minutes after the first apply (the index resource waits for
# it); until then the queries that need them fail with FAILED_PRECONDITION and cleanup retries on
# its next tick.
resource "google_firestore_index" "this" {
  for_each = local.firestore_indexes

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = local.topology.firestore.collections[each.value.collection]

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# TTL policies (shared/core/topology.json, firestore.ttl): Firestore deletes a document of the
# collection once the timestamp in the field has passed, so signed-URL tickets (tickets.expireAt),
# used or not, go away without a cleanup pass. Facts that shape this resource (Firestore docs,
# "Manage data retention with TTL policies"; hashicorp/google 6.50 google_firestore_field):
# - Only one TTL field per collection group, and a field is configured by one resource: the
#   precondition refuses a second TTL entry for a collection before the API would.
# - ttl_config {} (empty) is what turns the policy on; without it the policy is off.
# - index_config {} (empty) exempts the field from single-field indexes: timestamps that grow with
#   time hotspot an index, and no query filters on expireAt (a query that ever needs to must come
#   with a composite index in the topology). Left out, the field would keep the inherited indexes.
# - Deletion is not immediate (typically within 24 hours of the time, 72 in some docs): an expired
#   ticket still reads until then, so the code checks expireAt itself.
# - Creating the policy, and dropping the field's indexes on a collection that already holds
#   documents, is a long-running operation: the create and update timeouts allow for it.
# - Destroying the resource turns the policy off and restores the inherited indexes (the provider
#   clears the field's configuration; Firestore fields cannot be deleted).
locals {
  firestore_ttl_fields = { for ttl in local.topology.firestore.ttl : "${ttl.collection}.${ttl.field}" => ttl }
}

resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = local.topology.firestore.collections[each.value.collection]
  field      = each.value.field

  ttl_config {}
  index_config {}

  timeouts {
    create = "60m"
    update = "60m"
  }

  lifecycle {
    precondition {
      condition     = length([for ttl in local.topology.firestore.ttl : ttl if ttl.collection == each.value.collection]) == 1
      error_message = "shared/core/topology.json lists more than one TTL field for the ${each.value.collection} collection: Firestore allows one per collection group."
    }
  }
}
