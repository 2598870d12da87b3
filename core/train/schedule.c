/* Learning-rate schedules, as a pure function of the step so that a resumed
 * run needs no schedule state: linear warm-up, then constant, step,
 * multi-step or cosine. */
#include <math.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/train.h>

static const char *const names[] = {"constant", "step", "multistep", "cosine"};

const char *dlas_lr_kind_name(enum dlas_lr_kind k)
{
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int dlas_lr_kind_parse(const char *name, enum dlas_lr_kind *out)
{
    for (unsigned k = 0; name && k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(name, names[k])) {
            *out = (enum dlas_lr_kind)k;
            return DLAS_OK;
        }
    return dlas_error(DLAS_ERR_INVALID,
                      "unknown learning-rate schedule '%s' (constant, step, multistep, cosine)",
                      name ? name : "(null)");
}

double dlas_lr_at(const struct dlas_lr_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps)
        return s->lr * (double)(step + 1) / (double)s->warmup_steps;
    const int64_t epoch = s->steps_per_epoch > 0 ? step / s->steps_per_epoch : 0;
    switch (s->kind) {
    case DLAS_LR_STEP:
        return s->step_size > 0 ? s->lr * pow(s->gamma, (double)(epoch / s->step_size)) : s->lr;
    case DLAS_LR_MULTISTEP: {
        int passed = 0;
        for (int i = 0; i < s->n_milestones; i++)
            passed += epoch >= s->milestones[i];
        return s->lr * pow(s->gamma, passed);
    }
    case DLAS_LR_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        if (span < 1)
            return s->lr;
        double t = (double)(step - s->warmup_steps) / (double)span;
        if (t > 1.0)
            t = 1.0;
        return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1.0 + cos(M_PI * t));
    }
    default:
        return s->lr;
    }
}
