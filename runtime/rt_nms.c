/* rt_nms.c - NonMaxSuppression: per batch and class, greedily keep the highest-scoring boxes
 * whose overlap (IoU) with every box kept before is at most the threshold. */
#include <stdlib.h>

#include "runtime/kiln_rt.h"

typedef struct Box { float y1, x1, y2, x2; } Box;

static Box load_box(const float *b, int center) {
  Box r;
  if (center) { /* [x_center, y_center, width, height] */
    r.x1 = b[0] - b[2] / 2, r.x2 = b[0] + b[2] / 2;
    r.y1 = b[1] - b[3] / 2, r.y2 = b[1] + b[3] / 2;
  } else { /* [y1, x1, y2, x2], corners in either order */
    r.y1 = b[0] < b[2] ? b[0] : b[2], r.y2 = b[0] < b[2] ? b[2] : b[0];
    r.x1 = b[1] < b[3] ? b[1] : b[3], r.x2 = b[1] < b[3] ? b[3] : b[1];
  }
  return r;
}

static float iou(Box a, Box b) {
  float ih = (a.y2 < b.y2 ? a.y2 : b.y2) - (a.y1 > b.y1 ? a.y1 : b.y1);
  float iw = (a.x2 < b.x2 ? a.x2 : b.x2) - (a.x1 > b.x1 ? a.x1 : b.x1);
  if (ih <= 0 || iw <= 0) return 0;
  float inter = ih * iw;
  float uni = (a.y2 - a.y1) * (a.x2 - a.x1) + (b.y2 - b.y1) * (b.x2 - b.x1) - inter;
  return uni > 0 ? inter / uni : 0;
}

typedef struct Cand { float score; int64_t index; } Cand;

static int by_score_desc(const void *pa, const void *pb) {
  const Cand *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

int64_t kn_rt_nms(const float *boxes, const float *scores, int64_t batches, int64_t classes, int64_t n,
                  int64_t max_per_class, float iou_threshold, float score_threshold, int32_t has_score_threshold,
                  int32_t center_point_box, int64_t *out) {
  Cand *cand = malloc((size_t)(n > 0 ? n : 1) * sizeof *cand);
  int64_t *kept = malloc((size_t)(n > 0 ? n : 1) * sizeof *kept);
  if (!cand || !kept) {
    free(cand);
    free(kept);
    return -1;
  }
  int64_t total = 0;
  for (int64_t b = 0; b < batches; b++)
    for (int64_t c = 0; c < classes; c++) {
      const float *s = scores + (b * classes + c) * n;
      int64_t m = 0, k = 0;
      for (int64_t i = 0; i < n; i++)
        if (!has_score_threshold || s[i] > score_threshold) cand[m++] = (Cand){s[i], i};
      qsort(cand, (size_t)m, sizeof *cand, by_score_desc);
      for (int64_t i = 0; i < m && k < max_per_class; i++) {
        Box bi = load_box(boxes + (b * n + cand[i].index) * 4, center_point_box);
        int keep = 1;
        for (int64_t j = 0; j < k && keep; j++)
          keep = iou(bi, load_box(boxes + (b * n + kept[j]) * 4, center_point_box)) <= iou_threshold;
        if (!keep) continue;
        kept[k++] = cand[i].index;
        out[total * 3] = b, out[total * 3 + 1] = c, out[total * 3 + 2] = cand[i].index;
        total++;
      }
    }
  free(cand);
  free(kept);
  return total;
}
