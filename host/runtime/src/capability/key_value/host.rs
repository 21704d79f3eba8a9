//! `fermyon:spin/key-value` host functions, with per-component grants.

use super::StoreHandle;
use crate::capability::bindings::key_value::{Error, Host, HostStore};
use crate::state::InstanceState;
use wasmtime::component::Resource;

impl Host for InstanceState {}

impl InstanceState {
    fn kv(&self, store: &Resource<StoreHandle>) -> Result<&StoreHandle, Error> {
        self.table
            .get(store)
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl HostStore for InstanceState {
    fn open(&mut self, label: String) -> Result<Resource<StoreHandle>, Error> {
        let caps = &self.capabilities;
        if !caps.key_value_grants.contains(&label) {
            tracing::debug!(component = %caps.component_id, %label, "key-value store not granted");
            return Err(Error::AccessDenied);
        }
        let store = caps
            .resources
            .key_value
            .get(&label)
            .cloned()
            .ok_or(Error::NoSuchStore)?;
        self.table
            .push(StoreHandle { store })
            .map_err(|e| Error::Other(e.to_string()))
    }

    fn get(&mut self, store: Resource<StoreHandle>, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.kv(&store)?.store.get(&key).map_err(Error::Other)
    }

    fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.kv(&store)?
            .store
            .set(&key, &value)
            .map_err(Error::Other)
    }

    fn delete(&mut self, store: Resource<StoreHandle>, key: String) -> Result<(), Error> {
        self.kv(&store)?.store.delete(&key).map_err(Error::Other)
    }

    fn exists(&mut self, store: Resource<StoreHandle>, key: String) -> Result<bool, Error> {
        Ok(self
            .kv(&store)?
            .store
            .get(&key)
            .map_err(Error::Other)?
            .is_some())
    }

    fn get_keys(&mut self, store: Resource<StoreHandle>) -> Result<Vec<String>, Error> {
        self.kv(&store)?.store.keys().map_err(Error::Other)
    }

    fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
