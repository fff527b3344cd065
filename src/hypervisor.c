#include <string.h>

#include "hypervisor.h"
#include "util/cleanup.h"

/* Every backend; a new VMM is a new entry and a new file. */
static const sv_hypervisor_ops *const backends[] = {
    &sv_hypervisor_qemu,
};

const sv_hypervisor_ops *sv_hypervisor_get(const char *name)
{
    if (!name)
        name = SV_HYPERVISOR_DEFAULT;
    for (size_t i = 0; i < SV_ARRAY_SIZE(backends); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}
