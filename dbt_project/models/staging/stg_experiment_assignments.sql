-- The randomised arm of each customer in each scenario's experiment (ops.experiment_assignments, written by the
-- reminder flow the first day a customer enters a scenario; relance.reminders.engine.holdout_draw).
with

source as (
    select * from {{ source('ops', 'experiment_assignments') }}
),

renamed as (
    select
        cast(scenario as varchar) as scenario,
        cast(customer_id as varchar) as customer_id,
        cast(arm as varchar) as arm,
        cast(draw as double precision) as draw,
        cast(salt as varchar) as salt,
        cast(holdout_fraction as double precision) as holdout_fraction,
        cast(assigned_on as date) as assigned_on
    from source
)

select * from renamed
