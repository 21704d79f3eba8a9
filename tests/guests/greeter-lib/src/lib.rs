//! Greeter library: a non-HTTP component exporting greenmesh:testing/greeter, used by composition tests.
//!
//! It imports spin variables and key-value (via spin-sdk) so tests can check that the
//! composed library sees the permissions of the component it is composed into.

wit_bindgen::generate!({ path: "../wit", world: "greeter-lib" });

use exports::greenmesh::testing::greeter::Guest;
use spin_sdk::{key_value::Store, variables};

struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        let greeting = match variables::get("greeting") {
            Ok(value) => value,
            Err(e) => format!("denied({e:?})"),
        };
        let kv = match Store::open("default") {
            Ok(store) => {
                let _ = store.get("visits");
                "ok".to_owned()
            }
            Err(e) => format!("denied({e:?})"),
        };
        format!("hello {name}; greeting={greeting}; kv={kv}")
    }
}

export!(Greeter);
