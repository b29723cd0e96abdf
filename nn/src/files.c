/* files.c: checks on the files that nn reads and writes. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn_internal.h"

const char *file_type_name(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

ad_status open_regular_file(ad_ctx *ctx, const char *fn, const char *path, int *fd,
                            uint64_t *size) {
  /* O_NONBLOCK keeps open() from waiting for a writer when path is a FIFO.
     fstat then checks the file that was opened, whatever path names by now. */
  int opened = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (opened < 0)
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot open \"%s\": %s", fn, path, strerror(errno));
  struct stat st;
  if (fstat(opened, &st) != 0) {
    int saved = errno;
    close(opened);
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot read the status of \"%s\": %s", fn, path,
                        strerror(saved));
  }
  if (!S_ISREG(st.st_mode)) {
    close(opened);
    return ad_set_error(ctx, AD_ERR_IO, "%s: \"%s\" is %s, not a regular file; pass the path of "
                        "a regular file", fn, path, file_type_name((unsigned)st.st_mode));
  }
  int flags = fcntl(opened, F_GETFL);
  if (flags < 0 || fcntl(opened, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    int saved = errno;
    close(opened);
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot make \"%s\" blocking: %s", fn, path,
                        strerror(saved));
  }
  *fd = opened;
  *size = (uint64_t)st.st_size;
  return AD_OK;
}
