#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#include "internal/pycore_dict.h"
#else
#include <frameobject.h>
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_genobject.h"
#endif
#include "internal/pycore_interp.h"
#include "internal/pycore_gc.h"
#include <structmember.h>
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

  /* Heap walker (src/heap): objects, types, the GC lists, thread state, frames' locals. */
  P("type.tp_name", offsetof(PyTypeObject, tp_name));
  P("type.tp_basicsize", offsetof(PyTypeObject, tp_basicsize));
  P("type.tp_itemsize", offsetof(PyTypeObject, tp_itemsize));
  P("type.tp_flags", offsetof(PyTypeObject, tp_flags));
  P("type.tp_traverse", offsetof(PyTypeObject, tp_traverse));
  P("type.tp_base", offsetof(PyTypeObject, tp_base));
  P("type.tp_dict", offsetof(PyTypeObject, tp_dict));
  P("type.tp_is_gc", offsetof(PyTypeObject, tp_is_gc));
  P("type.tp_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
  P("type.tp_mro", offsetof(PyTypeObject, tp_mro));
  P("heaptype.ht_qualname", offsetof(PyHeapTypeObject, ht_qualname));
  P("heaptype.ht_module", offsetof(PyHeapTypeObject, ht_module));
#if PY_VERSION_HEX >= 0x030B0000
  P("heaptype.ht_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));
  P("keys.dk_log2_size", offsetof(PyDictKeysObject, dk_log2_size));
  P("keys.dk_log2_index_bytes", offsetof(PyDictKeysObject, dk_log2_index_bytes));
  P("keys.dk_kind", offsetof(PyDictKeysObject, dk_kind));
  P("keys.dk_usable", offsetof(PyDictKeysObject, dk_usable));
  P("keys.dk_nentries", offsetof(PyDictKeysObject, dk_nentries));
  P("keys.dk_indices", offsetof(PyDictKeysObject, dk_indices));
  P("sizeof(PyDictUnicodeEntry)", sizeof(PyDictUnicodeEntry));
  P("dictvalues.values", offsetof(PyDictValues, values));
#endif
  P("interp.gc.generations", offsetof(PyInterpreterState, gc.generations));
  P("interp.gc.permanent_generation", offsetof(PyInterpreterState, gc.permanent_generation));
  P("sizeof(gc_generation)", sizeof(struct gc_generation));
  P("NUM_GENERATIONS", NUM_GENERATIONS);
  P("sizeof(PyGC_Head)", sizeof(PyGC_Head));
  P("tstate.exc_info", offsetof(PyThreadState, exc_info));
  P("tstate.dict", offsetof(PyThreadState, dict));
  P("tstate.async_exc", offsetof(PyThreadState, async_exc));
  P("tstate.context", offsetof(PyThreadState, context));
#if PY_VERSION_HEX >= 0x030C0000
  P("tstate.current_exception", offsetof(PyThreadState, current_exception));
#else
  P("tstate.curexc_value", offsetof(PyThreadState, curexc_value));
#endif
  P("stackitem.exc_value", offsetof(_PyErr_StackItem, exc_value));
  P("stackitem.previous_item", offsetof(_PyErr_StackItem, previous_item));
#if PY_VERSION_HEX < 0x030B0000
  P("frame.f_localsplus", offsetof(PyFrameObject, f_localsplus));
  P("code.co_nlocals", offsetof(PyCodeObject, co_nlocals));
  P("code.co_varnames", offsetof(PyCodeObject, co_varnames));
  P("code.co_cellvars", offsetof(PyCodeObject, co_cellvars));
  P("code.co_freevars", offsetof(PyCodeObject, co_freevars));
#else
  P("frameobj.f_back", offsetof(PyFrameObject, f_back));
  P("frameobj.f_frame", offsetof(PyFrameObject, f_frame));
  P("iframe.localsplus", offsetof(_PyInterpreterFrame, localsplus));
  P("iframe.frame_obj", offsetof(_PyInterpreterFrame, frame_obj));
  P("iframe.f_locals", offsetof(_PyInterpreterFrame, f_locals));
  P("code.co_nlocalsplus", offsetof(PyCodeObject, co_nlocalsplus));
  P("code.co_nfreevars", offsetof(PyCodeObject, co_nfreevars));
  P("code.co_localsplusnames", offsetof(PyCodeObject, co_localsplusnames));
#endif
  P("code.co_consts", offsetof(PyCodeObject, co_consts));
  P("code.co_names", offsetof(PyCodeObject, co_names));
  P("func.func_code", offsetof(PyFunctionObject, func_code));
  P("func.func_globals", offsetof(PyFunctionObject, func_globals));
  P("func.func_closure", offsetof(PyFunctionObject, func_closure));
  P("func.func_defaults", offsetof(PyFunctionObject, func_defaults));
  P("func.func_dict", offsetof(PyFunctionObject, func_dict));
  P("method.im_func", offsetof(PyMethodObject, im_func));
  P("method.im_self", offsetof(PyMethodObject, im_self));
  P("cell.ob_ref", offsetof(PyCellObject, ob_ref));
  P("weakref.wr_object", offsetof(PyWeakReference, wr_object));
  P("exc.dict", offsetof(PyBaseExceptionObject, dict));
  P("exc.args", offsetof(PyBaseExceptionObject, args));
  P("exc.traceback", offsetof(PyBaseExceptionObject, traceback));
  P("exc.context", offsetof(PyBaseExceptionObject, context));
  P("exc.cause", offsetof(PyBaseExceptionObject, cause));
  P("tb.tb_next", offsetof(PyTracebackObject, tb_next));
  P("tb.tb_frame", offsetof(PyTracebackObject, tb_frame));
  P("list.ob_item", offsetof(PyListObject, ob_item));
  P("list.allocated", offsetof(PyListObject, allocated));
  P("tuple.ob_item", offsetof(PyTupleObject, ob_item));
  P("varobject.ob_size", offsetof(PyVarObject, ob_size));
  P("set.mask", offsetof(PySetObject, mask));
  P("set.table", offsetof(PySetObject, table));
  P("set.smalltable", offsetof(PySetObject, smalltable));
  P("sizeof(PySetObject)", sizeof(PySetObject));
  P("dict.ma_used", offsetof(PyDictObject, ma_used));
  P("dict.ma_keys", offsetof(PyDictObject, ma_keys));
  P("dict.ma_values", offsetof(PyDictObject, ma_values));
  P("bytes.ob_sval", offsetof(PyBytesObject, ob_sval));
  P("bytearray.ob_alloc", offsetof(PyByteArrayObject, ob_alloc));
#if PY_VERSION_HEX >= 0x030C0000
  P("long.lv_tag", offsetof(PyLongObject, long_value.lv_tag));
  P("long.digits", offsetof(PyLongObject, long_value.ob_digit));
#else
  P("long.digits", offsetof(PyLongObject, ob_digit));
#endif
  P("PyLong_SHIFT", PyLong_SHIFT);
  P("Py_TPFLAGS_HAVE_GC", Py_TPFLAGS_HAVE_GC);
  P("Py_TPFLAGS_HEAPTYPE", Py_TPFLAGS_HEAPTYPE);
#ifdef Py_TPFLAGS_MANAGED_DICT
  P("Py_TPFLAGS_MANAGED_DICT", Py_TPFLAGS_MANAGED_DICT);
#endif
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
  P("Py_TPFLAGS_MANAGED_WEAKREF", Py_TPFLAGS_MANAGED_WEAKREF);
#endif
#ifdef Py_TPFLAGS_INLINE_VALUES
  P("Py_TPFLAGS_INLINE_VALUES", Py_TPFLAGS_INLINE_VALUES);
#endif
  /* Heap walker extras (src/heap/layout.rs, `HeapExtra`): GC pass, slots, generators, value stacks. */
  P("interp.gc.collecting", offsetof(PyInterpreterState, gc.collecting));
  P("type.tp_members", offsetof(PyTypeObject, tp_members));
  P("code.co_stacksize", offsetof(PyCodeObject, co_stacksize));
#if PY_VERSION_HEX < 0x030A0000
  P("frame.f_valuestack", offsetof(PyFrameObject, f_valuestack));
  P("frame.f_stacktop", offsetof(PyFrameObject, f_stacktop));
  P("gen.gi_frame", offsetof(PyGenObject, gi_frame));
#elif PY_VERSION_HEX < 0x030B0000
  P("frame.f_valuestack", offsetof(PyFrameObject, f_valuestack));
  P("frame.f_stackdepth", offsetof(PyFrameObject, f_stackdepth));
  P("gen.gi_frame", offsetof(PyGenObject, gi_frame));
#else
  P("gen.gi_iframe", offsetof(PyGenObject, gi_iframe));
  P("gen.gi_frame_state", offsetof(PyGenObject, gi_frame_state));
  P("coro.cr_iframe", offsetof(PyCoroObject, cr_iframe));
  P("asyncgen.ag_iframe", offsetof(PyAsyncGenObject, ag_iframe));
  P("iframe.stacktop", offsetof(_PyInterpreterFrame, stacktop));
#endif
  P("sizeof(PyThreadState)", sizeof(PyThreadState));
  return 0;
}
