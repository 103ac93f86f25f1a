//! Orders the release link by shim.order.

include!("../runtime/link_order.rs");

fn main() {
    link_order("shim.order");
}
