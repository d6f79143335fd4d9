#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#else
#include <frameobject.h>
#endif
/* Prints the offsets the tracker reads, from this interpreter's own headers (the authority). */
#define P(name, expr) printf("%s %ld\n", name, (long)(expr))
int main(void) {
  printf("version %d.%d\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
  P("tstate.interp", offsetof(PyThreadState, interp));
#if PY_VERSION_HEX < 0x030B0000
  P("tstate.frame", offsetof(PyThreadState, frame));
  P("frame.f_back", offsetof(PyFrameObject, f_back));
  P("frame.f_code", offsetof(PyFrameObject, f_code));
  P("frame.f_lasti", offsetof(PyFrameObject, f_lasti));
  P("code.co_code", offsetof(PyCodeObject, co_code));
#elif PY_VERSION_HEX < 0x030D0000
  P("tstate.cframe", offsetof(PyThreadState, cframe));
  P("cframe.current_frame", offsetof(_PyCFrame, current_frame));
  P("iframe.f_code", offsetof(_PyInterpreterFrame, f_code));
  P("iframe.previous", offsetof(_PyInterpreterFrame, previous));
  P("iframe.prev_instr", offsetof(_PyInterpreterFrame, prev_instr));
  P("iframe.owner", offsetof(_PyInterpreterFrame, owner));
#if PY_VERSION_HEX < 0x030C0000
  P("iframe.is_entry", offsetof(_PyInterpreterFrame, is_entry));
#endif
#else
  P("tstate.current_frame", offsetof(PyThreadState, current_frame));
  P("iframe.f_executable", offsetof(_PyInterpreterFrame, f_executable));
  P("iframe.previous", offsetof(_PyInterpreterFrame, previous));
  P("iframe.instr_ptr", offsetof(_PyInterpreterFrame, instr_ptr));
  P("iframe.owner", offsetof(_PyInterpreterFrame, owner));
#endif
  P("tstate.thread_id", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX >= 0x030B0000
  P("tstate.native_thread_id", offsetof(PyThreadState, native_thread_id));
#endif
  P("code.co_filename", offsetof(PyCodeObject, co_filename));
  P("code.co_name", offsetof(PyCodeObject, co_name));
  P("code.co_firstlineno", offsetof(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX >= 0x030B0000
  P("code.co_qualname", offsetof(PyCodeObject, co_qualname));
  P("code._co_firsttraceable", offsetof(PyCodeObject, _co_firsttraceable));
  P("code.co_code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
#endif
  P("sizeof(PyASCIIObject)", sizeof(PyASCIIObject));
  P("sizeof(PyCompactUnicodeObject)", sizeof(PyCompactUnicodeObject));
  P("ascii.length", offsetof(PyASCIIObject, length));
  P("ascii.state", offsetof(PyASCIIObject, state));
  { PyASCIIObject o; memset(&o, 0, sizeof o); o.state.kind = 7; unsigned int v; memcpy(&v, &o.state, 4); P("state.kind_mask", v); }
  { PyASCIIObject o; memset(&o, 0, sizeof o); o.state.compact = 1; unsigned int v; memcpy(&v, &o.state, 4); P("state.compact_mask", v); }
  { PyASCIIObject o; memset(&o, 0, sizeof o); o.state.ascii = 1; unsigned int v; memcpy(&v, &o.state, 4); P("state.ascii_mask", v); }
  P("sizeof(PyThreadState)", sizeof(PyThreadState));
  return 0;
}
