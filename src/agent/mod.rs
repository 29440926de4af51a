pub mod react;
pub mod tools;
