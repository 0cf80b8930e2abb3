/* replay_main.c - a main() for fuzz targets built without libFuzzer: calls LLVMFuzzerTestOneInput
 * once per file (folders are walked one level deep), so every build replays the committed
 * regression inputs and seed corpora. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Reads path whole; NULL (with a message) on failure. */
static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || st.st_size < 0) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return NULL;
  }
  size_t len = (size_t)st.st_size;
  unsigned char *buf = malloc(len ? len : 1);
  bool ok = buf && fread(buf, 1, len, f) == len;
  fclose(f);
  if (!ok) {
    fprintf(stderr, "%s: read failed\n", path);
    free(buf);
    return NULL;
  }
  *size = len;
  return buf;
}

static int run_file(const char *path) {
  size_t size = 0;
  unsigned char *data = read_all(path, &size);
  if (!data) return 1;
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

static int run_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: %s\n", dir, strerror(errno));
    return 1;
  }
  int failures = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    failures += run_file(path);
    (*count)++;
  }
  closedir(d);
  return failures;
}

int main(int argc, char **argv) {
  int failures = 0, count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      failures += run_dir(argv[i], &count);
    } else {
      failures += run_file(argv[i]);
      count++;
    }
  }
  printf("replayed %d inputs, %d unreadable\n", count, failures);
  return failures ? 1 : 0;
}
