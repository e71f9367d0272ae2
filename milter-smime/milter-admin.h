/*
 * milter-admin: hanko-milter's admin socket ([milter] admin_socket), served in the main
 * loop: fax jobs and lists for hankoctl fax. Ops and keys: hk-milter-proto.h.
 */
#pragma once

#include "hk-ipc.h"
#include "milter-fax.h"

G_BEGIN_DECLS

typedef struct _MilterAdmin MilterAdmin;

MilterAdmin *milter_admin_new(HkConfig *config, MilterFax *fax, GError **error);
/* After a reload: what the ops read (dial rules, the gateway address). */
void milter_admin_set_config(MilterAdmin *admin, HkConfig *config);
void milter_admin_free(MilterAdmin *admin);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterAdmin, milter_admin_free)

G_END_DECLS
