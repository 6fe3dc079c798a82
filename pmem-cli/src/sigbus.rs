//! A clear message instead of a silent death when the pool file shrinks while it is read.
//!
//! The tool reads a pool through a mapping of the file. Should another program truncate the file
//! meanwhile, the next read of a page past the new end raises `SIGBUS` (a load from a mapping
//! cannot return an error), which would kill the tool with no word of why. The handler says what
//! happened and exits with the status of a damaged pool.

use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

static MESSAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static MESSAGE_LEN: AtomicUsize = AtomicUsize::new(0);

/// From now on, a `SIGBUS` prints a message naming `path` and exits with status `status`.
pub(crate) fn report_as_shrunk(path: &Path, status: u8) {
    let message = format!(
        "pmem: pool file {}: the file shrank while it was being read (another program truncated \
         it), or the device failed to read it; the file was not modified by this tool\n",
        path.display()
    );
    // Leaked: the handler may run at any moment until the process exits.
    let message: &'static mut [u8] = message.into_bytes().leak();
    MESSAGE_LEN.store(message.len(), Ordering::SeqCst);
    MESSAGE.store(message.as_mut_ptr(), Ordering::SeqCst);
    STATUS.store(status as usize, Ordering::SeqCst);
    // SAFETY: a zeroed `sigaction` is a valid "no flags, empty mask" value; the handler only
    // makes async-signal-safe calls (write, _exit) on data set up before it was installed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

static STATUS: AtomicUsize = AtomicUsize::new(1);

extern "C" fn on_sigbus(_signal: libc::c_int) {
    let message = MESSAGE.load(Ordering::SeqCst);
    let len = MESSAGE_LEN.load(Ordering::SeqCst);
    // SAFETY: `message` is null or a leaked buffer of `len` bytes that is never freed; write and
    // _exit are async-signal-safe. Standard output is not flushed: its buffer may be mid-update.
    unsafe {
        if !message.is_null() {
            libc::write(libc::STDERR_FILENO, message as *const libc::c_void, len);
        }
        libc::_exit(STATUS.load(Ordering::SeqCst) as libc::c_int);
    }
}
