/* rt_profile.c - per-kernel timing for `kiln bench`: the entry calls begin/end around each kernel
 * when the context carries a profile; nothing is recorded (and nothing called) otherwise. */
#include <stdlib.h>
#include <time.h>

#include "runtime/kiln_rt.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

KnRtProfile *kn_rt_profile_new(int n_sites, int64_t max_events) {
  if (n_sites < 0 || max_events < 0 || (uint64_t)max_events > SIZE_MAX / sizeof(KnRtTraceEvent)) return NULL;
  KnRtProfile *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n_sites = n_sites;
  p->sites = calloc((size_t)n_sites + 1, sizeof *p->sites);
  p->events = max_events ? calloc((size_t)max_events, sizeof *p->events) : NULL;
  if (!p->sites || (max_events && !p->events)) {
    kn_rt_profile_free(p);
    return NULL;
  }
  p->max_events = max_events;
  kn_rt_profile_reset(p);
  return p;
}

void kn_rt_profile_free(KnRtProfile *p) {
  if (!p) return;
  free(p->sites);
  free(p->events);
  free(p);
}

void kn_rt_profile_reset(KnRtProfile *p) {
  for (int i = 0; i < p->n_sites; i++) p->sites[i] = (KnRtProfileSite){0, 0.0, 0.0};
  p->n_events = 0;
  p->origin_ms = now_ms();
}

void kn_rt_profile_begin(KnRtCtx *ctx, int32_t site) {
  (void)site;
  ctx->profile->started_ms = now_ms();
}

void kn_rt_profile_end(KnRtCtx *ctx, int32_t site) {
  KnRtProfile *p = ctx->profile;
  double end = now_ms(), ms = end - p->started_ms;
  if (site < 0 || site >= p->n_sites) return;
  KnRtProfileSite *s = &p->sites[site];
  if (s->calls == 0 || ms < s->min_ms) s->min_ms = ms;
  s->calls++;
  s->total_ms += ms;
  if (p->n_events < p->max_events)
    p->events[p->n_events++] = (KnRtTraceEvent){site, (p->started_ms - p->origin_ms) * 1e3, ms * 1e3};
}

void kn_rt_ctx_release(KnRtCtx *ctx) {
  free(ctx->arena);
  ctx->arena = NULL;
  ctx->arena_bytes = 0;
}
