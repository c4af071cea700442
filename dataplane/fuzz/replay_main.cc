// Replays a libFuzzer seed corpus through a fuzz target's entry point when the
// build has no libFuzzer (the default build), so CI runs every target on every
// seed. Arguments are files or directories.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int runFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) {
    perror(path.c_str());
    return 1;
  }
  std::vector<uint8_t> buf;
  uint8_t chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf.insert(buf.end(), chunk, chunk + n);
  fclose(f);
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return 0;
}

int main(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (S_ISDIR(st.st_mode)) {
      DIR* d = opendir(argv[i]);
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (runFile(std::string(argv[i]) + "/" + e->d_name) != 0) return 1;
        ++files;
      }
      closedir(d);
    } else {
      if (runFile(argv[i]) != 0) return 1;
      ++files;
    }
  }
  printf("replayed %d inputs\n", files);
  return files > 0 ? 0 : 1;
}
