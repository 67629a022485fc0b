# The per-image state (images/{id}) and cleanup's per-step cursors (cleanup/{step}): a named
# Firestore database in Native mode, named by shared/core/topology.json (firestore.database.name, the
# default of FIRESTORE_DATABASE in shared/config.ts), with the composite indexes the topology lists
# for cleanup's and reprocess's queries. The functions reach it with roles/datastore.user
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
