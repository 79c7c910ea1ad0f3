//! Running a piece of work on the libuv thread pool and settling a promise with its result.
//!
//! Every call into bams3-core goes through [`task`]: the event loop never waits for storage,
//! and bams3-core's S3 runtime (which blocks on its own tokio runtime) never runs inside
//! another runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::{Env, Task};

use crate::error::{Failure, PANIC};

/// One job for the thread pool: `run` off the JavaScript thread, `to_js` on it.
pub trait Job: Send + Sized + 'static {
    type Output: Send + 'static;
    type Js: ToNapiValue + TypeName;
    fn run(&mut self) -> Result<Self::Output, Failure>;
    fn to_js(&mut self, env: Env, out: Self::Output) -> napi::Result<Self::Js>;
}

/// The napi `Task` around a [`Job`]: a failure (or a panic) rejects with a coded `Error`.
pub struct Work<J: Job> {
    job: J,
    failure: Option<Failure>,
}

impl<J: Job> Task for Work<J> {
    type Output = J::Output;
    type JsValue = J::Js;

    fn compute(&mut self) -> napi::Result<J::Output> {
        let failure = match catch_unwind(AssertUnwindSafe(|| self.job.run())) {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(f)) => f,
            Err(p) => {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Failure::new(PANIC, format!("internal error (panic): {what}"))
            }
        };
        let reason = failure.message.clone();
        self.failure = Some(failure);
        Err(napi::Error::from_reason(reason))
    }

    fn resolve(&mut self, env: Env, out: J::Output) -> napi::Result<J::Js> {
        self.job.to_js(env, out)
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<J::Js> {
        let f = self
            .failure
            .take()
            .unwrap_or_else(|| Failure::new(PANIC, err.reason.clone()));
        Err(f.into_js(env))
    }
}

/// A promise for `job`'s result, computed on the libuv pool.
pub fn task<J: Job>(job: J) -> AsyncTask<Work<J>> {
    AsyncTask::new(Work { job, failure: None })
}
