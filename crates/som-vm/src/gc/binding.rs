//! The VM binding's static side: what MMTk needs to know about our objects.
//!
//! * [`Som`] is the `VMBinding`; the trait implementations are split by concern:
//!   object model and slots here, root and object scanning in `roots`, threads and
//!   the stop-the-world handshake in `threads`.
//! * An `ObjectReference` is the address of the object's [`Header`] (offset 0).
//! * All GC metadata lives in side tables, except the forwarding pointer that moving
//!   plans would write over the class word (our Immix is built non-moving).
//! * A [`ValueSlot`] is a word holding a [`Value`]: only pointer values that lie in the
//!   collected heap are references (small integers, immediate doubles, classes and
//!   methods are not).

use super::in_heap_range;
use crate::object::{heap_size, Header};
use crate::value::Value;
use mmtk::util::copy::{CopySemantics, GCWorkerCopyContext};
use mmtk::util::{Address, ObjectReference, VMWorkerThread};
use mmtk::vm::slot::{Slot, UnimplementedMemorySlice};
use mmtk::vm::*;

#[derive(Default)]
pub struct Som;

impl VMBinding for Som {
    type VMObjectModel = Som;
    type VMScanning = Som;
    type VMCollection = Som;
    type VMActivePlan = Som;
    type VMReferenceGlue = Som;
    type VMSlot = ValueSlot;
    type VMMemorySlice = UnimplementedMemorySlice<ValueSlot>;

    const MIN_ALIGNMENT: usize = 8;
    const MAX_ALIGNMENT: usize = 8;
    /// Objects start where they are allocated (so an object's reference, start and
    /// valid-object bit are all at one address).
    const USE_ALLOCATION_OFFSET: bool = false;
}

/// The heap object `v` refers to, if it refers to one.
#[inline(always)]
pub fn heap_object(v: Value) -> Option<ObjectReference> {
    let word = v.bits() as usize;
    if word != 0 && in_heap_range(word) {
        ObjectReference::from_raw_address(super::address(word))
    } else {
        None
    }
}

/// A word that holds a [`Value`] (a field, an array element, a root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueSlot(pub Address);

impl ValueSlot {
    pub fn of(p: *const Value) -> ValueSlot {
        ValueSlot(Address::from_ptr(p))
    }
}

impl Slot for ValueSlot {
    fn load(&self) -> Option<ObjectReference> {
        // SAFETY: slots are only made for words that hold a Value.
        heap_object(unsafe { self.0.load::<Value>() })
    }

    fn store(&self, object: ObjectReference) {
        // A pointer value is the object's address itself (tag 000).
        // SAFETY: as in `load`.
        unsafe {
            self.0
                .store(Value::from_bits(object.to_raw_address().as_usize() as u64))
        }
    }
}

impl ObjectModel<Som> for Som {
    const GLOBAL_LOG_BIT_SPEC: VMGlobalLogBitSpec = VMGlobalLogBitSpec::side_first();
    const LOCAL_FORWARDING_POINTER_SPEC: VMLocalForwardingPointerSpec =
        VMLocalForwardingPointerSpec::in_header(0);
    const LOCAL_FORWARDING_BITS_SPEC: VMLocalForwardingBitsSpec =
        VMLocalForwardingBitsSpec::side_first();
    const LOCAL_MARK_BIT_SPEC: VMLocalMarkBitSpec =
        VMLocalMarkBitSpec::side_after(Self::LOCAL_FORWARDING_BITS_SPEC.as_spec());
    const LOCAL_LOS_MARK_NURSERY_SPEC: VMLocalLOSMarkNurserySpec =
        VMLocalLOSMarkNurserySpec::side_after(Self::LOCAL_MARK_BIT_SPEC.as_spec());

    const OBJECT_REF_OFFSET_LOWER_BOUND: isize = 0;
    /// An object reference is the object's start, its header and its allocation
    /// address alike (which lets MMTk find an object from a conservative pointer
    /// without consulting us).
    const UNIFIED_OBJECT_REFERENCE_ADDRESS: bool = true;

    fn copy(
        _from: ObjectReference,
        _semantics: CopySemantics,
        _copy_context: &mut GCWorkerCopyContext<Som>,
    ) -> ObjectReference {
        unreachable!("Immix built with `immix_non_moving` never copies objects")
    }

    fn copy_to(_from: ObjectReference, _to: ObjectReference, _region: Address) -> Address {
        unreachable!("Immix built with `immix_non_moving` never copies objects")
    }

    fn get_reference_when_copied_to(_from: ObjectReference, to: Address) -> ObjectReference {
        ObjectReference::from_raw_address(to).expect("a copy target is never null")
    }

    fn get_current_size(object: ObjectReference) -> usize {
        // SAFETY: MMTk only asks about objects it allocated, which are initialised
        // before the next allocation (see `Heap::allocate`).
        unsafe { heap_size(object.to_raw_address().to_ptr::<Header>()) }
    }

    fn get_size_when_copied(object: ObjectReference) -> usize {
        Self::get_current_size(object)
    }

    fn get_align_when_copied(_object: ObjectReference) -> usize {
        8
    }

    fn get_align_offset_when_copied(_object: ObjectReference) -> usize {
        0
    }

    fn get_type_descriptor(_reference: ObjectReference) -> &'static [i8] {
        &[]
    }

    fn ref_to_object_start(object: ObjectReference) -> Address {
        object.to_raw_address()
    }

    fn ref_to_header(object: ObjectReference) -> Address {
        object.to_raw_address()
    }

    fn dump_object(object: ObjectReference) {
        // SAFETY: as in `get_current_size`.
        let kind = unsafe { (*object.to_raw_address().to_ptr::<Header>()).kind };
        eprintln!("{object}: {kind:?}");
    }
}

/// SOM has no weak references or finalizers.
impl ReferenceGlue<Som> for Som {
    type FinalizableType = ObjectReference;

    fn clear_referent(_new_reference: ObjectReference) {}

    fn get_referent(_object: ObjectReference) -> Option<ObjectReference> {
        None
    }

    fn set_referent(_reff: ObjectReference, _referent: ObjectReference) {}

    fn enqueue_references(_references: &[ObjectReference], _tls: VMWorkerThread) {}
}
